import Link from "next/link";
import { forbidden, notFound } from "next/navigation";
import { PageHeader } from "@/components/page-header";
import { Badge } from "@/components/ui/badge";
import { Card } from "@/components/ui/card";
import { getDb } from "@/db";
import { getActivityEvent, resolveTargetLabels } from "@/db/queries/activity";
import { describeTarget } from "@/lib/audit/activity";
import { actionLabel } from "@/lib/audit/events";
import { activityView, requirePermission } from "@/lib/auth/session";
import { formatDateTime } from "@/lib/utils";

export const metadata = { title: "Activity event" };

export default async function ActivityEventPage({
  params,
  searchParams,
}: {
  params: Promise<{ id: string }>;
  searchParams: Promise<Record<string, string | string[] | undefined>>;
}) {
  const ctx = await requirePermission("readAudit", "/activity");
  const { id } = await params;
  const { view } = await searchParams;
  if (!/^\d{1,15}$/.test(id)) notFound();
  const scope = await activityView(ctx, view, "/activity/[id]");
  if (scope === "refused") forbidden();
  const isSystem = scope === "system";
  const chain = isSystem ? "" : ctx.orgId;
  const db = await getDb();
  const event = await getActivityEvent({ db, chain, id: Number(id) });
  if (!event) notFound();
  const labels = await resolveTargetLabels({
    db,
    orgId: isSystem ? null : ctx.orgId,
    refs: [{ type: event.targetType, id: event.targetId }],
  });
  const rows: [string, string][] = [
    ["When", `${formatDateTime(event.occurredAtDate)} (${event.occurredAt})`],
    [
      "Who",
      `${event.actorLabel ?? event.actorType} (${event.actorType}${event.actorId ? ` ${event.actorId}` : ""})`,
    ],
    ["Action", `${actionLabel(event.action)} (${event.action})`],
    [
      "Target",
      event.targetType
        ? `${describeTarget(labels, event.targetType, event.targetId, event.personalObject.email)} (${event.targetType}${event.targetId === null ? "" : ` ${event.targetId}`})`
        : "—",
    ],
    ["Outcome", event.outcome],
    ["IP address", event.ip ?? "—"],
    ["User agent", event.userAgent ?? "—"],
    ["Sequence", event.seq === null ? "not sealed yet" : String(event.seq)],
    ["Hash", event.hash ?? "—"],
    ["Previous hash", event.prevHash ?? "—"],
  ];
  return (
    <>
      <PageHeader title={actionLabel(event.action)} description={`Event ${event.id}`}>
        {event.seq === null ? <Badge>not sealed yet</Badge> : <Badge tone="good">sealed</Badge>}
      </PageHeader>
      <Card>
        <dl className="grid grid-cols-[10rem_1fr] gap-x-4 gap-y-2 text-sm">
          {rows.map(([term, value]) => (
            <div key={term} className="contents">
              <dt className="font-medium text-slate-600">{term}</dt>
              <dd className="break-all">{value}</dd>
            </div>
          ))}
          <dt className="font-medium text-slate-600">Metadata</dt>
          <dd>
            <pre className="overflow-x-auto whitespace-pre-wrap break-all rounded bg-slate-50 p-2 text-xs">
              {JSON.stringify({ ...event.metadataObject, ...event.personalObject }, null, 2)}
            </pre>
          </dd>
        </dl>
        <p className="mt-4 text-sm">
          <Link href={isSystem ? "/activity?view=system" : "/activity"} className="underline">
            Back to the activity log
          </Link>
        </p>
      </Card>
    </>
  );
}
