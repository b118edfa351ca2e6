import "server-only";
import { desc, eq, sql } from "drizzle-orm";
import { type DbOrTx, inTransaction } from "@/db";
import { auditEvents } from "@/db/schema";
import { GENESIS_HASH, hashEvent } from "./chain";
import type { AuditInput } from "./events";

const SECRET_KEY = /token|secret|password|verifier|authorization|cookie|key$/i;

// Metadata is for causes and results, never credentials: drop anything that looks like one.
function scrub(metadata: Record<string, unknown> = {}): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(metadata).filter(([key, value]) => !SECRET_KEY.test(key) && value !== undefined),
  );
}

/**
 * Appends one event to its organisation's hash chain. Call it with the transaction that makes
 * the change it records, so the event and the change commit or fail together.
 */
export async function writeAuditEvent(db: DbOrTx, input: AuditInput) {
  const chain = input.orgId ?? "";
  const run = async (tx: DbOrTx) => {
    // Serialises appends per chain across processes; released when the transaction ends.
    await tx.execute(sql`select pg_advisory_xact_lock(hashtextextended(${`audit:${chain}`}, 0))`);
    const [last] = await tx
      .select({ seq: auditEvents.seq, hash: auditEvents.hash })
      .from(auditEvents)
      .where(eq(auditEvents.chain, chain))
      .orderBy(desc(auditEvents.seq))
      .limit(1);
    const fields = {
      chain,
      seq: (last?.seq ?? 0) + 1,
      occurredAt: new Date(),
      actorType: input.actor.type,
      actorId: input.actor.id ?? null,
      actorLabel: input.actor.label ?? null,
      action: input.action,
      targetType: input.target?.type ?? null,
      targetId: input.target?.id ?? null,
      outcome: input.outcome,
      ip: input.ip ?? null,
      userAgent: input.userAgent?.slice(0, 512) ?? null,
      metadata: scrub(input.metadata),
      prevHash: last?.hash ?? GENESIS_HASH,
    };
    const [row] = await tx
      .insert(auditEvents)
      .values({ ...fields, orgId: input.orgId, hash: hashEvent(fields) })
      .returning({ id: auditEvents.id });
    return row;
  };
  return inTransaction(db, run);
}
