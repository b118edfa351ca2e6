import { PageHeader } from "@/components/page-header";
import { Badge } from "@/components/ui/badge";
import { Card } from "@/components/ui/card";
import { EmptyState } from "@/components/ui/empty-state";
import { Table } from "@/components/ui/table";
import { getDb } from "@/db";
import { listAuditEvents } from "@/db/queries/audit";
import { checkOrganizationChain } from "@/lib/audit/read";
import { requirePermission } from "@/lib/auth/session";
import { formatDateTime } from "@/lib/utils";

export const metadata = { title: "Activity log" };

const OUTCOME_TONE = { success: "good", failure: "bad", denied: "warn" } as const;

// The sealer runs within seconds of a write; an event still unsealed after this is an incident.
const UNSEALED_ALARM_MS = 60_000;

export default async function ActivityPage() {
  const ctx = await requirePermission("readAudit", "/activity");
  const db = await getDb();
  const [events, chain] = await Promise.all([
    listAuditEvents({ db, orgId: ctx.orgId, limit: 200 }),
    checkOrganizationChain(db, ctx.orgId),
  ]);
  const oldestUnsealed = chain.unsealed.oldest;
  const isSealerStuck =
    oldestUnsealed !== null && Date.now() - oldestUnsealed.getTime() > UNSEALED_ALARM_MS;
  return (
    <>
      <PageHeader
        title="Activity log"
        description="Every sign-in, OAuth, SMTP and admin event of this organisation. Append-only and hash-chained."
      >
        {chain.problem === null ? (
          <Badge tone="good">Chain intact · {chain.length} events</Badge>
        ) : (
          <Badge tone="bad">
            Chain broken at event {chain.problem.seq}: {chain.problem.reason}
          </Badge>
        )}
      </PageHeader>
      {isSealerStuck && (
        <Card className="mb-4 border-red-300 bg-red-50" role="alert">
          <p className="text-red-800 text-sm">
            {chain.unsealed.count} event{chain.unsealed.count === 1 ? " has" : "s have"} not been
            sealed into the chain for more than a minute (oldest {formatDateTime(oldestUnsealed)}).
            The sealer is not running or is refusing this chain: check the server log.
          </p>
        </Card>
      )}
      <Card>
        {events.length === 0 ? (
          <EmptyState title="No events yet">
            Sign-ins, mailbox connections and changes to members appear here as they happen.
          </EmptyState>
        ) : (
          <Table columns={["When", "Who", "Action", "Target", "Outcome"]}>
            {events.map((e) => (
              <tr key={e.id}>
                <td className="whitespace-nowrap">{formatDateTime(e.occurredAt)}</td>
                <td>{e.actorLabel ?? e.actorType}</td>
                <td className="font-mono text-xs">{e.action}</td>
                <td className="text-xs">{e.targetType ? `${e.targetType} ${e.targetId}` : "—"}</td>
                <td>
                  <Badge tone={OUTCOME_TONE[e.outcome]}>{e.outcome}</Badge>{" "}
                  {e.seq === null && <Badge>not sealed yet</Badge>}
                </td>
              </tr>
            ))}
          </Table>
        )}
      </Card>
    </>
  );
}
