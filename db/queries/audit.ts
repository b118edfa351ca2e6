import "server-only";
import { asc, desc, eq } from "drizzle-orm";
import type { DbOrTx } from "@/db";
import { auditEvents } from "@/db/schema";

export async function listAuditEvents({
  db,
  orgId,
  limit = 100,
}: {
  db: DbOrTx;
  orgId: string;
  limit?: number;
}) {
  return db
    .select()
    .from(auditEvents)
    .where(eq(auditEvents.orgId, orgId))
    .orderBy(desc(auditEvents.seq))
    .limit(limit);
}

export async function listChain({ db, chain }: { db: DbOrTx; chain: string }) {
  return db
    .select()
    .from(auditEvents)
    .where(eq(auditEvents.chain, chain))
    .orderBy(asc(auditEvents.seq));
}
