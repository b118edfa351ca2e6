import { createHash } from "node:crypto";

export const GENESIS_HASH = "0".repeat(64);

export type ChainedFields = {
  chain: string;
  seq: number;
  occurredAt: Date;
  actorType: string;
  actorId: string | null;
  actorLabel: string | null;
  action: string;
  targetType: string | null;
  targetId: string | null;
  outcome: string;
  ip: string | null;
  userAgent: string | null;
  metadata: Record<string, unknown>;
  prevHash: string;
};

// Keys sorted at every depth so that jsonb's own key order cannot change the hash.
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  if (value && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(",")}}`;
  }
  return JSON.stringify(value ?? null);
}

const CHAINED_KEYS = [
  "chain",
  "seq",
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
  "prevHash",
] as const satisfies readonly (keyof ChainedFields)[];

/** Hashes exactly the chained fields, so a row read back with its id and hash hashes the same. */
export function hashEvent(fields: ChainedFields): string {
  const picked = Object.fromEntries(CHAINED_KEYS.map((key) => [key, fields[key]]));
  return createHash("sha256")
    .update(canonical({ ...picked, occurredAt: fields.occurredAt.toISOString() }))
    .digest("hex");
}

/** Returns the seq of the first event whose hash or link does not hold, or null when intact. */
export function verifyChain(events: (ChainedFields & { hash: string })[]): number | null {
  let prev = GENESIS_HASH;
  for (const event of events) {
    if (event.prevHash !== prev || hashEvent(event) !== event.hash) return event.seq;
    prev = event.hash;
  }
  return null;
}
