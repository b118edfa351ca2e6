import Link from "next/link";
import { notFound } from "next/navigation";
import { PageHeader } from "@/components/page-header";
import { Badge } from "@/components/ui/badge";
import { Card } from "@/components/ui/card";
import { EmptyState } from "@/components/ui/empty-state";
import { Table } from "@/components/ui/table";
import { getDb } from "@/db";
import { getWebhookEndpoint, listEndpointDeliveries } from "@/db/queries/webhooks";
import { requirePermission } from "@/lib/auth/session";
import { formatDateTime } from "@/lib/utils";
import { endpointStateLabel, MAX_WAITING_DELIVERIES } from "@/lib/webhooks/breaker";
import {
  DeleteEndpointButton,
  EditEndpointForm,
  EnableEndpointButton,
  RotateSecretButton,
  TestDeliveryButton,
} from "../forms";

export const metadata = { title: "Webhook endpoint" };

const STATUS_TONE = {
  pending: "warn",
  sending: "warn",
  delivered: "good",
  failed: "bad",
  cancelled: "neutral",
} as const;

export default async function WebhookEndpointPage({
  params,
}: {
  params: Promise<{ endpointId: string }>;
}) {
  const ctx = await requirePermission("manageWebhooks", "/webhooks/[endpointId]");
  const { endpointId } = await params;
  const db = await getDb();
  const endpoint = await getWebhookEndpoint({ db, orgId: ctx.orgId, endpointId });
  if (!endpoint) notFound();
  const deliveries = await listEndpointDeliveries({ db, orgId: ctx.orgId, endpointId });
  return (
    <>
      <PageHeader title="Webhook endpoint" description={endpoint.url}>
        <Link className="text-brand-600 text-sm underline" href="/webhooks">
          All endpoints
        </Link>
      </PageHeader>
      <div className="mb-6 grid gap-6 lg:grid-cols-2">
        <Card className="space-y-4">
          <h2 className="font-medium">Settings</h2>
          <p className="text-sm">
            <Badge tone={endpoint.enabled ? "good" : "neutral"}>
              {endpointStateLabel(endpoint)}
            </Badge>
          </p>
          {!endpoint.enabled && endpoint.disabledReason === "backlog" && (
            <p className="text-slate-700 text-sm">
              Mailwarden turned this endpoint off when more than{" "}
              {MAX_WAITING_DELIVERIES.toLocaleString("en")} of its deliveries were waiting: its
              receiver was failing or too slow to keep up. The waiting deliveries were cancelled and
              are not sent again. Fix the receiver, then turn the endpoint on: new events are
              delivered from then on.
            </p>
          )}
          <EditEndpointForm endpoint={endpoint} />
        </Card>
        <Card className="space-y-4">
          <h2 className="font-medium">Actions</h2>
          {endpoint.enabled && <TestDeliveryButton endpointId={endpoint.id} />}
          <EnableEndpointButton endpointId={endpoint.id} enabled={endpoint.enabled} />
          <div className="space-y-1">
            <RotateSecretButton endpointId={endpoint.id} />
            <p className="text-slate-500 text-xs">
              {endpoint.previousSecretExpiresAt && endpoint.previousSecretExpiresAt > new Date()
                ? `The previous secret also signs until ${formatDateTime(endpoint.previousSecretExpiresAt)}.`
                : "After a rotation the previous secret keeps signing beside the new one for a while, so your receiver can switch without missing a delivery."}
            </p>
          </div>
          <DeleteEndpointButton endpointId={endpoint.id} url={endpoint.url} />
        </Card>
      </div>
      <Card>
        <h2 className="mb-3 font-medium">Deliveries</h2>
        {deliveries.length === 0 ? (
          <EmptyState title="No delivery yet">
            Deliveries appear here when an event this endpoint chose happens, or when you send a
            test.
          </EmptyState>
        ) : (
          <Table columns={["Event", "Status", "Attempts and answers", "Next attempt"]}>
            {deliveries.map((d) => (
              <tr key={d.id} data-delivery={d.id}>
                <td>
                  <code className="text-xs">{d.eventType}</code>
                  <div className="font-mono text-slate-500 text-xs">{d.id}</div>
                  <div className="text-slate-500 text-xs">{formatDateTime(d.createdAt)}</div>
                </td>
                <td>
                  <Badge tone={STATUS_TONE[d.status]}>{d.status}</Badge>
                </td>
                <td>
                  {d.attemptList.length === 0 ? (
                    <span className="text-slate-500 text-xs">Not attempted yet</span>
                  ) : (
                    <ol className="space-y-1 text-xs">
                      {d.attemptList.map((a) => (
                        <li key={a.id}>
                          <span className="font-medium">
                            {a.statusCode !== null ? `HTTP ${a.statusCode}` : (a.error ?? "error")}
                          </span>{" "}
                          {formatDateTime(a.attemptedAt)}, {a.durationMs} ms
                          {a.statusCode !== null && a.error ? ` (${a.error})` : ""}
                          {a.responseExcerpt && (
                            <div className="break-all text-slate-600">{a.responseExcerpt}</div>
                          )}
                        </li>
                      ))}
                    </ol>
                  )}
                </td>
                <td className="text-xs">
                  {d.status === "pending" && d.nextAttemptAt
                    ? formatDateTime(d.nextAttemptAt)
                    : "—"}
                  {d.status === "pending" && (
                    <div className="text-slate-500">gives up {formatDateTime(d.deadlineAt)}</div>
                  )}
                </td>
              </tr>
            ))}
          </Table>
        )}
      </Card>
    </>
  );
}
