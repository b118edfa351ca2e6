import "server-only";
import { type DbOrTx, inTransaction } from "@/db";
import { insertAuditEvent } from "@/db/queries/audit";
import { type AuditInput, isHighVolume } from "./events";
import { SEAL_BATCH, sealChainInTransaction } from "./seal";
import { nudgeAuditSealer } from "./sealer";

const SECRET_KEY = /token|secret|password|verifier|authorization|cookie|key$/i;

// Metadata is for causes and results, never credentials: drop anything that looks like one.
function scrub(metadata: Record<string, unknown> = {}): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(metadata).filter(([key, value]) => !SECRET_KEY.test(key) && value !== undefined),
  );
}

/**
 * Records one event. Call it with the transaction that makes the change it records, so the
 * event and the change commit or fail together.
 *
 * High-volume events (see HIGH_VOLUME_ACTIONS) are a plain insert, sealed into the chain
 * shortly after by the background sealer, so sends never wait on the chain lock. Every other
 * event is sealed before its transaction commits, together with any pending events before it.
 */
export async function writeAuditEvent(db: DbOrTx, input: AuditInput) {
  const chain = input.orgId ?? "";
  const values = {
    chain,
    orgId: input.orgId,
    occurredAt: new Date(),
    actorType: input.actor.type,
    actorId: input.actor.id ?? null,
    actorLabel: input.actor.label ?? null,
    action: input.action,
    targetType: input.target?.type ?? null,
    targetId: input.target?.id ?? null,
    outcome: input.outcome,
    ip: input.request?.ip ?? null,
    userAgent: input.request?.userAgent?.slice(0, 512) ?? null,
    metadata: scrub(input.metadata),
  };
  if (isHighVolume(input.action)) {
    const row = await insertAuditEvent({ db, values });
    nudgeAuditSealer();
    return row;
  }
  return inTransaction(db, async (tx) => {
    const row = await insertAuditEvent({ db: tx, values });
    // A backlog larger than one batch is sealed too: this event comes after it.
    let sealed: number;
    do {
      sealed = await sealChainInTransaction(tx, chain);
    } while (sealed === SEAL_BATCH);
    return row;
  });
}
