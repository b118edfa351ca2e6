import "server-only";
import { eq } from "drizzle-orm";
import type { DbOrTx } from "@/db";
import { getDb } from "@/db";
import { apiKeys, mailboxes } from "@/db/schema";
import { addressLimitKey } from "@/lib/auth/client-address";
import type { RequestInfo } from "@/lib/auth/request";
import { rateLimits } from "@/lib/ratelimit/runtime";
import type { AuditInput } from "./events";
import { writeAuditEvent } from "./write";

// Refusals anyone can cause at will (a made-up API key, a flood of requests) are audited, but
// sampled: at most one event per address (or per limiter key) per window, carrying how many
// refusals it stands for, so that nobody can flood the log or slow the refusal down.

const REFUSED_KEY_WINDOW_MS = 60_000;
const MAX_TRACKED = 10_000;
const TOKEN_PREFIX = /^mwk_([0-9a-f]{12})_/;

type Tracker = Map<string, { until: number; suppressed: number }>;

const holder = globalThis as typeof globalThis & {
  __mailwardenRefusals?: { keys: Tracker; limits: Tracker; callers: Tracker };
};
holder.__mailwardenRefusals ??= { keys: new Map(), limits: new Map(), callers: new Map() };
holder.__mailwardenRefusals.callers ??= new Map();
const trackers = holder.__mailwardenRefusals;

/**
 * Whether this refusal is the one of its window to write; returns the refusals it stands for.
 * The map is bounded: past MAX_TRACKED keys the oldest are forgotten (their next refusal is
 * logged a little early, which is harmless).
 */
export function sampleRefusal(tracker: Tracker, key: string, windowMs: number, now = Date.now()) {
  const seen = tracker.get(key);
  if (seen && seen.until > now) {
    seen.suppressed++;
    return null;
  }
  if (tracker.size >= MAX_TRACKED) {
    for (const [k, v] of tracker) {
      if (v.until <= now || tracker.size >= MAX_TRACKED) tracker.delete(k);
      if (tracker.size < MAX_TRACKED / 2) break;
    }
  }
  tracker.set(key, { until: now + windowMs, suppressed: 0 });
  return { suppressedBefore: seen?.suppressed ?? 0 };
}

/** A sampled refusal that was not written after all: its key's next event counts `count` more. */
function countForNext(tracker: Tracker, key: string, count: number) {
  const seen = tracker.get(key);
  if (seen) seen.suppressed += count;
}

/**
 * At most `max` events of a kind per process and minute, whatever their keys: one client holding
 * many /64s (a /48 holds 65,536 of them) must not fill the log either. Two kinds: refused API
 * keys, and rate-limit refusals keyed by an address. The same caps hold across instances
 * (`auditRefusedKeys`, `auditRateLimitRefusals`); these still hold when the store is down.
 */
type ProcessCap = { max: number; until: number; written: number; suppressed: number };
const CAP = 120;
const CAP_WINDOW_MS = 60_000;
const caps = {
  refusedKeys: { max: CAP, until: 0, written: 0, suppressed: 0 } as ProcessCap,
  addressLimits: { max: CAP, until: 0, written: 0, suppressed: 0 } as ProcessCap,
};

/** For tests: smaller caps, so that reaching them takes a few requests; undefined restores them. */
export function useRefusalCaps(max: number | undefined) {
  for (const cap of Object.values(caps)) {
    Object.assign(cap, { max: max ?? CAP, until: 0, written: 0, suppressed: 0 });
  }
}

/**
 * The per-address sampling across instances (the limit of that name, in Redis when configured):
 * whether another instance already wrote this client's event this minute. A store that does not
 * answer leaves it to this process's own sampling.
 */
async function clientSampledElsewhere(client: string): Promise<"yes" | "no" | "unanswered"> {
  const forClient = await rateLimits().get("auditRefusedKeyClient").limit(client);
  return forClient.unavailable ? "unanswered" : forClient.success ? "no" : "yes";
}

/** Null past the cap (the refusal is only counted); else how many the cap held back before. */
function takeFromCap(cap: ProcessCap, now = Date.now()): number | null {
  if (cap.until <= now) Object.assign(cap, { until: now + CAP_WINDOW_MS, written: 0 });
  if (cap.written >= cap.max) {
    cap.suppressed++;
    return null;
  }
  cap.written++;
  const before = cap.suppressed;
  cap.suppressed = 0;
  return before;
}

/**
 * Past the instances' cap (the limit `name`, in Redis when configured) this event is not written:
 * it is counted for this process's next one, and the rest of this process's window is full, so
 * the store is not asked again in it (each ask is a round trip). A store that does not answer
 * leaves it to the process's own cap. `window` is the cap's window when the event took its place.
 */
async function cappedElsewhere(
  name: "auditRefusedKeys" | "auditRateLimitRefusals",
  cap: ProcessCap,
  window: number,
  heldBefore: number,
): Promise<boolean> {
  const inAll = await rateLimits().get(name).limit("all");
  if (inAll.success || inAll.unavailable) return false;
  if (cap.until === window) cap.written = cap.max;
  cap.suppressed += heldBefore + 1;
  return true;
}

/**
 * Audits a bearer token the send route refused. A revoked key of an organisation goes to that
 * organisation's log; an unknown or malformed one has no organisation: the system log. Never
 * throws: the 401 must not depend on the log.
 */
export async function auditRefusedApiKey(token: string | null, request: RequestInfo) {
  const client = addressLimitKey(request.ip);
  const sample = sampleRefusal(trackers.keys, client, REFUSED_KEY_WINDOW_MS);
  if (!sample) return;
  // Past this process's own cap the store is not asked: nothing is written anyway.
  const cap = caps.refusedKeys;
  const overCap = takeFromCap(cap);
  if (overCap === null) {
    countForNext(trackers.keys, client, sample.suppressedBefore);
    return;
  }
  try {
    const window = cap.until;
    const sampled = await clientSampledElsewhere(client);
    if (sampled === "yes") {
      // Another instance wrote this client's event: this process's next event for the client
      // says how many it stands for, and its place under the cap is given back.
      if (cap.until === window) cap.written = Math.max(0, cap.written - 1);
      cap.suppressed += overCap;
      countForNext(trackers.keys, client, sample.suppressedBefore + 1);
      return;
    }
    // A store that did not answer is not asked again for the cap (a second timeout).
    if (sampled === "no" && (await cappedElsewhere("auditRefusedKeys", cap, window, overCap))) {
      countForNext(trackers.keys, client, sample.suppressedBefore);
      return;
    }
    const db = await getDb();
    const prefix = token ? TOKEN_PREFIX.exec(token)?.[1] : undefined;
    const [row] = prefix
      ? await db
          .select({
            id: apiKeys.id,
            orgId: apiKeys.orgId,
            revokedAt: apiKeys.revokedAt,
            expiresAt: apiKeys.expiresAt,
          })
          .from(apiKeys)
          .where(eq(apiKeys.prefix, prefix))
          .limit(1)
      : [];
    const reason = !token
      ? "missing"
      : !prefix
        ? "malformed"
        : !row
          ? "unknown"
          : row.revokedAt
            ? "revoked"
            : row.expiresAt && row.expiresAt <= new Date()
              ? "expired"
              : "wrong_secret";
    await writeAuditEvent(db, {
      orgId: row?.orgId ?? null,
      actor: { type: "system", label: "Unauthenticated API client" },
      action: "api_key.refused",
      target: row ? { type: "api_key", id: row.id } : null,
      outcome: "denied",
      request,
      metadata: {
        reason,
        // Only the public prefix: never any part of the secret.
        ...(prefix ? { prefix } : {}),
        sampledPerAddressSeconds: REFUSED_KEY_WINDOW_MS / 1000,
        suppressedBefore: sample.suppressedBefore,
        ...(overCap > 0 ? { suppressedByProcessCap: overCap } : {}),
      },
    });
  } catch (error) {
    console.error(`[mailwarden] audit of a refused API key failed: ${(error as Error).name}`);
  }
}

/** A limiter key's kind (`ip`, `user`, `org`, `api_key`, `mailbox`): the text before its colon. */
const kindOf = (identifier: string) => identifier.slice(0, Math.max(0, identifier.indexOf(":")));

async function orgOfLimiterKey(identifier: string): Promise<string | null> {
  const colon = identifier.indexOf(":");
  const kind = kindOf(identifier);
  const id = identifier.slice(colon + 1);
  if (kind === "org") return id;
  const db = await getDb();
  if (kind === "api_key") {
    const [row] = await db.select({ orgId: apiKeys.orgId }).from(apiKeys).where(eq(apiKeys.id, id));
    return row?.orgId ?? null;
  }
  if (kind === "mailbox") {
    const [row] = await db
      .select({ orgId: mailboxes.orgId })
      .from(mailboxes)
      .where(eq(mailboxes.id, id));
    return row?.orgId ?? null;
  }
  return null;
}

/**
 * Audits a rate-limit refusal: one event per limiter key per window (until the limiter lets it
 * through again), in the log of the organisation the key belongs to, else the system log. Keys
 * naming an address are as many as a client has addresses, so their events are capped too, per
 * process and across instances; a person's (bounded by accounts) and an organisation's are not.
 */
export async function auditRateLimitRefusal(
  limit: string,
  identifier: string,
  retryAfterSeconds: number,
) {
  const key = `${limit}|${identifier}`;
  const sample = sampleRefusal(trackers.limits, key, Math.max(1, retryAfterSeconds) * 1000);
  if (!sample) return;
  const kind = kindOf(identifier);
  const cap = kind === "ip" ? caps.addressLimits : null;
  const overCap = cap ? takeFromCap(cap) : 0;
  if (overCap === null) {
    countForNext(trackers.limits, key, sample.suppressedBefore);
    return;
  }
  try {
    if (cap && (await cappedElsewhere("auditRateLimitRefusals", cap, cap.until, overCap))) {
      countForNext(trackers.limits, key, sample.suppressedBefore);
      return;
    }
    const orgId = await orgOfLimiterKey(identifier);
    // An address or a person is personal data: the system log names only its kind.
    await writeAuditEvent(await getDb(), {
      orgId,
      actor: { type: "system", label: "Rate limiter" },
      action: "rate_limit.refused",
      target: { type: "rate_limit", id: limit },
      outcome: "denied",
      metadata: {
        limit,
        scope: orgId || kind === "org" ? identifier : kind,
        retryAfterSeconds,
        suppressedBefore: sample.suppressedBefore,
        ...(overCap > 0 ? { suppressedByProcessCap: overCap } : {}),
      },
    });
  } catch (error) {
    console.error(`[mailwarden] audit of a rate-limit refusal failed: ${(error as Error).name}`);
  }
}

const CALLER_WINDOW_MS = 60_000;

/**
 * A refusal an API key can repeat at will (sending while paused, probing mailboxes it may not
 * use): audited once per key, action and reason per minute, with the refusals it stands for.
 */
export async function auditCallerRefusal(db: DbOrTx, input: AuditInput) {
  const key = `${input.actor.type}:${input.actor.id ?? ""}|${input.action}|${String(input.metadata?.reason ?? "")}`;
  const sample = sampleRefusal(trackers.callers, key, CALLER_WINDOW_MS);
  if (!sample) return;
  await writeAuditEvent(db, {
    ...input,
    metadata: {
      ...input.metadata,
      sampledPerKeySeconds: CALLER_WINDOW_MS / 1000,
      suppressedBefore: sample.suppressedBefore,
    },
  });
}

const MAILBOX_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * A person named a mailbox their organisation does not have (another organisation's id, or one
 * made up) to reconnect or revoke it: `access.denied` in their own organisation's log, sampled
 * per person and operation like the other refusals a caller can repeat. Nothing goes to the log
 * of the organisation the id may belong to, and whether it exists anywhere is not looked up (the
 * log's readers would learn it). The id is the caller's text: kept only in a mailbox id's shape,
 * else only its length, bounded.
 */
export async function auditUnknownMailbox(
  ctx: { orgId: string; actor: AuditInput["actor"]; request?: RequestInfo | null },
  mailboxId: string,
  operation: "reconnect" | "revoke",
) {
  const wellFormed = MAILBOX_ID.test(mailboxId);
  await auditCallerRefusal(await getDb(), {
    orgId: ctx.orgId,
    actor: ctx.actor,
    action: "access.denied",
    target: wellFormed ? { type: "mailbox", id: mailboxId.toLowerCase() } : null,
    outcome: "denied",
    request: ctx.request ?? null,
    metadata: {
      // Sampled per operation: a reconnect probe does not hide a revoke probe.
      reason: `${operation}_mailbox_not_in_organization`,
      ...(wellFormed ? {} : { malformedIdLength: Math.min(mailboxId.length, 1000) }),
    },
  });
}
