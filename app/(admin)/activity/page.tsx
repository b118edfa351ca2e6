import { PageHeader } from "@/components/page-header";
import { Badge } from "@/components/ui/badge";
import { Card } from "@/components/ui/card";
import { Table } from "@/components/ui/table";
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
          <Table columns={["When", "Who", "Action", "Target", "Outcome"]}>
            {events.map((e) => (
              <tr key={e.id}>
                <td className="whitespace-nowrap">{formatDateTime(e.occurredAt)}</td>
                <td>{e.actorLabel ?? e.actorType}</td>
                <td className="font-mono text-xs">{e.action}</td>
                <td className="text-xs">{e.targetType ? `${e.targetType} ${e.targetId}` : "—"}</td>
                <td>
                  <Badge tone={OUTCOME_TONE[e.outcome]}>{e.outcome}</Badge>
                </td>
              </tr>
            ))}
          </Table>
        )}
      </Card>
    </>
  );
}
