import { createHash, createHmac } from "node:crypto";

// Pure: the keyed hash of an event, a checkpoint and a chain head. Every input is exactly what
// the database stores, read back as text (occurred_at to the microsecond, metadata as jsonb's
// own text form), so changing any stored byte changes the MAC.
//
// An event's personal fields (actor label, IP, user agent, `personal`) are not chained
// themselves: the chain commits to `personal_mac`, a keyed hash of them, so that erasure and
// retention can replace them without breaking the chain. While they are present they are checked
// against `personal_mac`; once replaced, against `personal_erased_mac`, a keyed hash of the
// replacement written by the erasure. Without the key neither can be forged, so someone with
// database access alone can neither edit personal fields nor pass an edit off as an erasure.

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
  /** jsonb's own text form of the `personal` column. */
  personal: string;
  personalMac: string | null;
  personalErasedAt: string | null;
  personalErasedMac: string | null;
};

export type SealedEvent = StoredEvent & { seq: number; prevHash: string; hash: string };

// A JSON array is unambiguous where concatenation is not ("a"+"bc" vs "ab"+"c", null vs "").
function mac(key: Buffer, parts: unknown[]): string {
  return createHmac("sha256", key).update(JSON.stringify(parts)).digest("hex");
}

export type PersonalFields = {
  actorLabel: string | null;
  ip: string | null;
  userAgent: string | null;
  personal: string;
};

/** What the chain commits to instead of the personal fields; the id keeps equal values apart. */
export function macPersonal(key: Buffer, event: PersonalFields & { id: number }): string {
  return mac(key, [
    "mailwarden.audit.personal.v1",
    event.id,
    event.actorLabel,
    event.ip,
    event.userAgent,
    event.personal,
  ]);
}

/** Vouches for the replacement of the personal fields of one event, written by erasure. */
export function macErasedPersonal(
  key: Buffer,
  event: PersonalFields & { id: number; personalMac: string; personalErasedAt: string },
): string {
  return mac(key, [
    "mailwarden.audit.personal.erased.v1",
    event.id,
    event.personalMac,
    event.personalErasedAt,
    event.actorLabel,
    event.ip,
    event.userAgent,
    event.personal,
  ]);
}

/** The chained hash: every stored field except the personal ones, which `personalMac` stands for. */
export function hashEvent(
  key: Buffer,
  event: Omit<StoredEvent, "personalMac"> & { personalMac: string; seq: number; prevHash: string },
): string {
  return mac(key, [
    "mailwarden.audit.event.v3",
    event.id,
    event.chain,
    event.seq,
    event.orgId,
    event.occurredAt,
    event.actorType,
    event.actorId,
    event.action,
    event.targetType,
    event.targetId,
    event.outcome,
    event.metadata,
    event.personalMac,
    event.prevHash,
  ]);
}

/** Whether the personal fields are the ones sealed, or an erasure the key vouches for. */
export function personalFieldsIntact(key: Buffer, event: StoredEvent): boolean {
  if (event.personalMac === null) return false;
  if (event.personalErasedAt === null) {
    return event.personalErasedMac === null && macPersonal(key, event) === event.personalMac;
  }
  const expected = macErasedPersonal(key, {
    ...event,
    personalMac: event.personalMac,
    personalErasedAt: event.personalErasedAt,
  });
  return expected === event.personalErasedMac;
}

/**
 * Why an event's personal fields cannot be trusted (edited, or an erasure the key does not vouch
 * for), or null when they can: verification's check, also made before erasure or retention
 * replaces them, so that neither re-signs an edit.
 */
export function personalFieldsProblem(key: Buffer, event: StoredEvent): string | null {
  if (personalFieldsIntact(key, event)) return null;
  return event.personalErasedAt === null
    ? "personal fields do not match their MAC (edited)"
    : "erased personal fields do not match their erasure MAC (edited)";
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

/** What an export's manifest states; its MAC (`macManifest`) makes it trustworthy offline. */
export type ManifestFields = {
  format: string;
  chain: string;
  filter: Record<string, string>;
  filtered: boolean;
  count: number;
  sealed: number;
  unsealed: number;
  first: { seq: number; hash: string } | null;
  last: { seq: number; hash: string } | null;
  /** `digestUnsealed` of the unsealed events, in the order exported. */
  unsealedDigest: string;
  generatedAt: string;
  chainKeyId: string;
};

/**
 * The MAC of an export's manifest: without it, whoever holds the file could drop or cut events
 * and restate the counts, or call an edited event unsealed. Every field, in a fixed order; the
 * filter as its entries sorted by name.
 */
export function macManifest(key: Buffer, m: ManifestFields): string {
  const filter = Object.entries(m.filter).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return mac(key, [
    "mailwarden.audit.export-manifest.v1",
    m.format,
    m.chain,
    filter,
    m.filtered,
    m.count,
    m.sealed,
    m.unsealed,
    m.first?.seq ?? null,
    m.first?.hash ?? null,
    m.last?.seq ?? null,
    m.last?.hash ?? null,
    m.unsealedDigest,
    m.generatedAt,
    m.chainKeyId,
  ]);
}

const EXPORTED_FIELDS = [
  "id",
  "chain",
  "orgId",
  "occurredAt",
  "actorType",
  "actorId",
  "actorLabel",
  "action",
  "targetType",
  "targetId",
  "outcome",
  "ip",
  "userAgent",
  "metadata",
  "personal",
  "personalMac",
  "personalErasedAt",
  "personalErasedMac",
  "seq",
  "prevHash",
  "hash",
] as const;

/**
 * A running SHA-256 over the unsealed events of an export, every field of each. Unsealed events
 * have no MAC of their own; the manifest's MAC covers this digest, so they cannot be edited,
 * added or dropped after the export either.
 */
export function digestUnsealed() {
  const hash = createHash("sha256").update("mailwarden.audit.unsealed.v1");
  return {
    add(row: Record<string, unknown>) {
      hash.update(`${JSON.stringify(EXPORTED_FIELDS.map((f) => row[f] ?? null))}\n`);
    },
    hex: () => hash.copy().digest("hex"),
  };
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
    if (
      event.personalMac === null ||
      hashEvent(key, { ...event, personalMac: event.personalMac }) !== event.hash
    ) {
      return {
        cursor,
        problem: { ...at, reason: "hash does not match the stored fields (edited)" },
      };
    }
    const personal = personalFieldsProblem(key, event);
    if (personal) return { cursor, problem: { ...at, reason: personal } };
    cursor = { seq: event.seq, hash: event.hash };
  }
  return { cursor, problem: null };
}
