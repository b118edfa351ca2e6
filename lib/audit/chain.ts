import { createHmac } from "node:crypto";

// Pure: the keyed hash of an event, a checkpoint and a chain head. Every input is exactly what
// the database stores, read back as text (occurred_at to the microsecond, metadata as jsonb's
// own text form), so changing any stored byte changes the MAC.

export const GENESIS_HASH = "0".repeat(64);

/** How many events lie between two checkpoints. */
export const CHECKPOINT_EVERY = 1000;

/** An audit event as the sealer and the verifier read it. */
export type StoredEvent = {
  id: number;
  chain: string;
  orgId: string | null;
  occurredAt: string;
  actorType: string;
  actorId: string | null;
  actorLabel: string | null;
  action: string;
  targetType: string | null;
  targetId: string | null;
  outcome: string;
  ip: string | null;
  userAgent: string | null;
  metadata: string;
};

export type SealedEvent = StoredEvent & { seq: number; prevHash: string; hash: string };

// A JSON array is unambiguous where concatenation is not ("a"+"bc" vs "ab"+"c", null vs "").
function mac(key: Buffer, parts: unknown[]): string {
  return createHmac("sha256", key).update(JSON.stringify(parts)).digest("hex");
}

export function hashEvent(
  key: Buffer,
  event: StoredEvent & { seq: number; prevHash: string },
): string {
  return mac(key, [
    "mailwarden.audit.event.v2",
    event.id,
    event.chain,
    event.seq,
    event.orgId,
    event.occurredAt,
    event.actorType,
    event.actorId,
    event.actorLabel,
    event.action,
    event.targetType,
    event.targetId,
    event.outcome,
    event.ip,
    event.userAgent,
    event.metadata,
    event.prevHash,
  ]);
}

export type Checkpoint = { chain: string; seq: number; hash: string; createdAt: string };

export function macCheckpoint(key: Buffer, cp: Checkpoint): string {
  return mac(key, ["mailwarden.audit.checkpoint.v1", cp.chain, cp.seq, cp.hash, cp.createdAt]);
}

export type ChainHead = { chain: string; seq: number; hash: string };

export function macHead(key: Buffer, head: ChainHead): string {
  return mac(key, ["mailwarden.audit.head.v1", head.chain, head.seq, head.hash]);
}

export type Anchor = { chain: string; seq: number; hash: string; purgedAt: string };

/** The MAC of where a retention purge cut the chain: verification starts there. */
export function macAnchor(key: Buffer, anchor: Anchor): string {
  return mac(key, [
    "mailwarden.audit.anchor.v1",
    anchor.chain,
    anchor.seq,
    anchor.hash,
    anchor.purgedAt,
  ]);
}

/** A JS Date in the form `exactTime` reads timestamps back in (microseconds, UTC). */
export function isoMicros(date: Date): string {
  return `${date.toISOString().slice(0, -1)}000Z`;
}

export type ChainProblem = {
  chain: string;
  seq: number;
  id: number | null;
  reason: string;
};

type Cursor = { seq: number; hash: string };

/**
 * Checks a run of events that should follow `from` directly: consecutive seq, each linked to
 * the one before, each MAC intact. Returns the first problem, or the new cursor.
 */
export function checkRun(
  key: Buffer,
  chain: string,
  from: Cursor,
  events: SealedEvent[],
): { cursor: Cursor; problem: ChainProblem | null } {
  let cursor = from;
  for (const event of events) {
    const expected = cursor.seq + 1;
    const at = { chain, seq: event.seq, id: event.id };
    if (event.seq !== expected) {
      const reason =
        event.seq > expected
          ? `seq ${expected}${event.seq - 1 > expected ? `–${event.seq - 1}` : ""} missing (deleted?) before this event`
          : `seq ${event.seq} appears twice`;
      return { cursor, problem: { ...at, reason } };
    }
    if (event.prevHash !== cursor.hash) {
      return {
        cursor,
        problem: { ...at, reason: `prev_hash does not match the hash of seq ${cursor.seq}` },
      };
    }
    if (hashEvent(key, event) !== event.hash) {
      return {
        cursor,
        problem: { ...at, reason: "hash does not match the stored fields (edited)" },
      };
    }
    cursor = { seq: event.seq, hash: event.hash };
  }
  return { cursor, problem: null };
}
