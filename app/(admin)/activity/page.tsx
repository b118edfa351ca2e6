import { PageHeader } from "@/components/page-header";
import { Badge } from "@/components/ui/badge";
import { Card } from "@/components/ui/card";
import { getDb } from "@/db";
import { listAuditEvents } from "@/db/queries/audit";
import { verifyOrganizationChain } from "@/lib/audit/read";
import { requirePermission } from "@/lib/auth/session";
import { formatDateTime } from "@/lib/utils";

export const metadata = { title: "Activity log" };

const OUTCOME_TONE = { success: "good", failure: "bad", denied: "warn" } as const;

export default async function ActivityPage() {
  const ctx = await requirePermission("readAudit", "/activity");
  const db = await getDb();
  const [events, chain] = await Promise.all([
    listAuditEvents({ db, orgId: ctx.orgId, limit: 200 }),
    verifyOrganizationChain(db, ctx.orgId),
  ]);
  return (
    <>
      <PageHeader
        title="Activity log"
        description="Every sign-in, OAuth, SMTP and admin event of this organisation. Append-only and hash-chained."
      >
        {chain.brokenAt === null ? (
          <Badge tone="good">Chain intact · {chain.count} events</Badge>
        ) : (
          <Badge tone="bad">Chain broken at event {chain.brokenAt}</Badge>
        )}
      </PageHeader>
      <Card>
        {events.length === 0 ? (
          <p className="text-sm">No events yet.</p>
        ) : (
          <table className="w-full text-left text-sm">
            <thead className="text-slate-500">
              <tr>
                <th className="py-2">When</th>
                <th>Who</th>
                <th>Action</th>
                <th>Target</th>
                <th>Outcome</th>
              </tr>
            </thead>
            <tbody>
              {events.map((e) => (
                <tr key={e.id} className="border-slate-100 border-t align-top">
                  <td className="py-2 whitespace-nowrap">{formatDateTime(e.occurredAt)}</td>
                  <td className="py-2">{e.actorLabel ?? e.actorType}</td>
                  <td className="py-2 font-mono text-xs">{e.action}</td>
                  <td className="py-2 text-xs">
                    {e.targetType ? `${e.targetType} ${e.targetId}` : "—"}
                  </td>
                  <td className="py-2">
                    <Badge tone={OUTCOME_TONE[e.outcome]}>{e.outcome}</Badge>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Card>
    </>
  );
}
