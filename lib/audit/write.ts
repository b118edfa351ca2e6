import "server-only";
import { type DbOrTx, inTransaction } from "@/db";
import type { StatementPart } from "@/db/prepared";
import { insertAuditEvent, insertAuditEventWithChange } from "@/db/queries/audit";
import { type AuditInput, isHighVolume, PERSONAL_METADATA_KEYS } from "./events";
import { SEAL_BATCH, type SealOptions, sealChainInTransaction } from "./seal";
import { nudgeAuditSealer } from "./sealer";

const SECRET_KEY = /token|secret|password|verifier|authorization|cookie|key$/i;

// Metadata is for causes and results, never credentials: drop anything that looks like one.
function scrub(metadata: Record<string, unknown> = {}): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(metadata).filter(([key, value]) => !SECRET_KEY.test(key) && value !== undefined),
  );
}

// Personal values go to their own column whatever the caller named them under.
function split(input: AuditInput) {
  const metadata: Record<string, unknown> = {};
  const personal: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(scrub(input.metadata))) {
    (PERSONAL_METADATA_KEYS.has(key) ? personal : metadata)[key] = value;
  }
  return { metadata, personal: { ...personal, ...scrub(input.personal) } };
}

function eventValues(input: AuditInput) {
  return {
    chain: input.orgId ?? "",
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
    ...split(input),
  };
}

/**
 * Records one event. Call it with the transaction that makes the change it records, so the
 * event and the change commit or fail together.
 *
 * High-volume events (see HIGH_VOLUME_ACTIONS) are a plain insert, sealed into the chain
 * shortly after by the background sealer, so sends never wait on the chain lock. Every other
 * event is sealed before its transaction commits, together with any pending events before it.
 */
export async function writeAuditEvent(db: DbOrTx, input: AuditInput, options: SealOptions = {}) {
  const values = eventValues(input);
  const chain = values.chain;
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
      sealed = await sealChainInTransaction(tx, chain, SEAL_BATCH, options);
    } while (sealed === SEAL_BATCH);
    return row;
  });
}

/**
 * A high-volume event written by the same statement as the change it records (`change`, an
 * UPDATE or INSERT without RETURNING): they commit together like a transaction would make them,
 * in one round trip instead of four (begin, change, insert, commit). The event (and `also`) is
 * written only when the change touched a row: a change that no longer applies records nothing.
 * Sealed later like any other.
 */
export function writeAuditEventWithChange(
  db: DbOrTx,
  input: AuditInput,
  statement: {
    /** One name per combination of parts (see db/prepared.ts). */
    name: string;
    /** An UPDATE or INSERT without RETURNING. */
    change: StatementPart;
    /** A further write (INSERT/UPDATE without RETURNING) that must commit with the change. */
    also?: StatementPart;
  },
): Promise<{ isWritten: boolean; also: number }> {
  return writeAuditEventWith(input, (values) =>
    insertAuditEventWithChange({ db, values, ...statement }),
  );
}

/**
 * The same for a statement of the caller's own that writes the event's stored values with its
 * change (the send's outcome, grouped with others: db/queries/message-outcomes.ts).
 */
export async function writeAuditEventWith<T extends { isWritten: boolean }>(
  input: AuditInput,
  write: (values: ReturnType<typeof eventValues>) => Promise<T>,
): Promise<T> {
  if (!isHighVolume(input.action)) {
    throw new Error(`${input.action} is sealed inline: write it with writeAuditEvent instead`);
  }
  const written = await write(eventValues(input));
  if (written.isWritten) nudgeAuditSealer();
  return written;
}
