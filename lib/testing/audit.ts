import { and, asc, eq } from "drizzle-orm";
import { getDb } from "@/db";
import { auditEvents } from "@/db/schema";

// The audit events a test looks for: every event of an organisation, oldest first, optionally
// only those of one action or about one target.

export type AuditEventRow = typeof auditEvents.$inferSelect;

export async function auditEventsOf(
  orgId: string,
  filter: { action?: string; targetId?: string } = {},
): Promise<AuditEventRow[]> {
  const db = await getDb();
  return db
    .select()
    .from(auditEvents)
    .where(
      and(
        eq(auditEvents.orgId, orgId),
        filter.action === undefined ? undefined : eq(auditEvents.action, filter.action),
        filter.targetId === undefined ? undefined : eq(auditEvents.targetId, filter.targetId),
      ),
    )
    .orderBy(asc(auditEvents.id));
}
