import "server-only";
import { createHash } from "node:crypto";
import { type Duration, Ratelimit } from "@upstash/ratelimit";
import { Redis as UpstashRedis } from "@upstash/redis";
import { Redis as IORedis } from "ioredis";
import { RateLimiterMemory, RateLimiterRes } from "rate-limiter-flexible";
import type { ProviderId } from "@/db/schema";
import { upstashCompatibleRedis } from "./ioredis-adapter";

// Rate limits: one small interface over three backends.
//   upstash: @upstash/ratelimit over Upstash's REST API (sliding window).
//   redis:   the same @upstash/ratelimit class over a self-hosted Redis through ioredis.
//   memory:  rate-limiter-flexible's RateLimiterMemory (fixed window, one process only).
// Every backend fails closed: an error or a slow answer denies the request.

export type RateLimitResult = {
  success: boolean;
  limit: number;
  remaining: number;
  /** Epoch milliseconds when the window resets. */
  resetAt: number;
  /** Seconds to put in Retry-After; at least 1 when denied, 0 when allowed. */
  retryAfterSeconds: number;
  /**
   * Set when the limit store could not answer (down, unreachable, too slow): the request was
   * denied without being counted. Callers tell people "temporarily unavailable", not "too many".
   */
  unavailable?: true;
};

export type Limiter = {
  /**
   * Counts one request (or `cost` units, e.g. recipients) for `identifier`.
   * A denied call counts its cost in memory (rate-limiter-flexible). On Redis and Upstash it
   * counts nothing once the limit is reached, but a cost larger than what is left is counted
   * and then refused (the library's sliding window): `limitAll` checks a cost whole.
   */
  limit(identifier: string, cost?: number): Promise<RateLimitResult>;
};

/** One limit of a `RateLimits.limitAll` call. */
export type LimitCheck = { name: LimitName; identifier: string; cost?: number };
/** The limit that refused a `RateLimits.limitAll` call, and its answer. */
export type LimitRefusal = { name: LimitName; identifier: string; result: RateLimitResult };

/** `window` is "<integer> <s|m|h|d>", e.g. "1 m", "1 h", "1 d", "10 s". */
export type LimitSpec = { tokens: number; window: string };

export const DEFAULT_LIMITS = {
  signIn: { tokens: 10, window: "1 m" }, // per IP: the sign-in page and Auth.js's sign-in POST
  signInCallback: { tokens: 20, window: "1 m" }, // per IP: Auth.js's provider callbacks
  oauthStart: { tokens: 10, window: "1 m" }, // per person (the caller may also key per org)
  oauthCallback: { tokens: 20, window: "1 m" }, // per IP
  // Per IP, mailbox callbacks from nobody signed in: each one is refused and audited, so this
  // bounds how fast a stranger can grow the audit log.
  oauthCallbackAnonymous: { tokens: 10, window: "1 m" },
  tokenRefresh: { tokens: 30, window: "1 m" }, // per mailbox
  // Sends, per mailbox, at the providers' published limits, each day limit in its provider's
  // unit (sendDayCost below):
  // Microsoft 365: 30 messages a minute and 10,000 recipients a day per mailbox.
  sendMailboxMinuteMicrosoft: { tokens: 30, window: "1 m" },
  sendMailboxDayMicrosoft: { tokens: 10_000, window: "1 d" },
  // Gmail: about 2,000 messages a day for Workspace (500 for consumer accounts: override).
  // Google publishes no per-minute figure; 60 a minute is our own burst guard.
  sendMailboxMinuteGoogle: { tokens: 60, window: "1 m" },
  sendMailboxDayGoogle: { tokens: 2_000, window: "1 d" },
  // The minute limits above are the defaults of SMTP_PER_MINUTE_<PROVIDER> (lib/env.ts), which
  // the runtime passes in so that the route's limit and the queue's pace are one setting.
  // The local demo provider gets Google's day limit (in messages) and a fast minute
  // (SMTP_PER_MINUTE_DEMO).
  sendMailboxMinuteDemo: { tokens: 600, window: "1 m" },
  sendMailboxDayDemo: { tokens: 2_000, window: "1 d" },
  apiKey: { tokens: 600, window: "1 m" }, // per API key
  apiKeyRead: { tokens: 600, window: "1 m" }, // per API key: GET /api/v1/messages/{id}
  testSend: { tokens: 10, window: "1 m" }, // per person
  // Webhook test deliveries, per person and per organisation: each is a request to a URL of
  // the caller's choosing.
  webhookTest: { tokens: 5, window: "1 m" },
  // Webhook endpoint creations and changes, per person and per organisation: each resolves a
  // host of the caller's choosing (lib/webhooks/address.ts).
  webhookEndpointSave: { tokens: 30, window: "1 h" },
  // Downloads that stream a whole activity log or a person's data, per person.
  dataExport: { tokens: 20, window: "1 h" },
  // Rows a person creates from the console (API keys, invitations, privacy requests), per
  // person and per organisation: sign-up is open, so a stranger could otherwise make them
  // without end, and every page listing them grows with them.
  consoleCreate: { tokens: 60, window: "1 h" },
  // How many refused-API-key events the log takes across instances (lib/audit/refusals.ts): one
  // per client address a minute, and 120 a minute in all, however many instances refuse. Keep
  // their windows at a minute: each process samples by the minute too, and its events say so.
  auditRefusedKeyClient: { tokens: 1, window: "1 m" },
  auditRefusedKeys: { tokens: 120, window: "1 m" },
  // And how many rate-limit refusals keyed by an address it takes across instances: 120 a
  // minute in all.
  auditRateLimitRefusals: { tokens: 120, window: "1 m" },
} as const satisfies Record<string, LimitSpec>;

export type LimitName = keyof typeof DEFAULT_LIMITS;

/**
 * Limits that only sample the audit log: their refusals are the sampling working, and auditing
 * them would write the events they hold back.
 */
export const AUDIT_SAMPLING_LIMITS: ReadonlySet<LimitName> = new Set([
  "auditRefusedKeyClient",
  "auditRefusedKeys",
  "auditRateLimitRefusals",
]);
export type LimitOverrides = Partial<Record<LimitName, LimitSpec>>;

/** The two per-mailbox send limits for a provider. */
export function sendLimitNames(provider: ProviderId): { minute: LimitName; day: LimitName } {
  const suffix = provider === "microsoft" ? "Microsoft" : provider === "google" ? "Google" : "Demo";
  return { minute: `sendMailboxMinute${suffix}`, day: `sendMailboxDay${suffix}` };
}

/**
 * What one message costs against its mailbox's day limit, in the provider's unit: Microsoft
 * counts recipients (10,000 a day), Gmail messages (about 2,000 a day, whatever their
 * recipients); the demo provider plays Gmail's limit.
 */
export function sendDayCost(provider: ProviderId, recipientCount: number): number {
  return provider === "microsoft" ? Math.max(1, recipientCount) : 1;
}

export type RateLimitsConfig = {
  upstash?: { url: string; token: string };
  /** redis:// or rediss:// URL of a self-hosted Redis. Never logged. */
  redisUrl?: string;
  overrides?: LimitOverrides;
  /** Key prefix in Redis; default "mailwarden:rl". */
  prefix?: string;
  /** A check slower than this is denied; default 2000 ms. */
  timeoutMs?: number;
  /** Where the (rate-limited) failure line goes; default console.error. */
  log?: (line: string) => void;
};

export type RateLimits = {
  get(name: LimitName): Limiter;
  /**
   * Several limits as one: each is asked in order, and none is counted unless every one passes
   * (a send the minute refuses takes nothing from the day, and the other way round); a cost
   * larger than what is left is refused without being counted. Answers the first refusal, with
   * what was left of that limit (in memory, 0 when the refusal fell in the give-back margin
   * below), or null when all passed and were counted; a store that fails
   * is a refusal ("unavailable") in the first limit's name. On Redis and Upstash one script of
   * our own over @upstash/ratelimit's sliding-window keys, so a `get(name).limit` of the same
   * identifier shares the count. In memory, a limit counted in the last GIVE_BACK_MARGIN_MS of
   * its window stays counted (errs closed). Each (name, identifier) at most once per call.
   */
  limitAll(checks: readonly LimitCheck[]): Promise<LimitRefusal | null>;
  backend: "upstash" | "redis" | "memory";
  /** Whether the store answers a PING within the check timeout (memory: always). */
  ping(): Promise<boolean>;
  close(): Promise<void>;
};

const FAIL_CLOSED_RETRY_SECONDS = 30;
/**
 * The memory backend's limitAll gives back what it counted unless the window that counted it
 * ends within this margin: a give-back after the window rolled would add units to the next one.
 */
const GIVE_BACK_MARGIN_MS = 1_000;

// limitAll on Redis and Upstash: @upstash/ratelimit's sliding window (a window's count plus the
// previous window's, weighted by how much of it the sliding window still covers), over the same
// keys, for several limits at once. Every limit is checked before any is counted, and a cost is
// checked whole (the library's script refuses only once the count has reached the limit, so a
// cost larger than what is left passes its check, is counted, then reads as refused).
// KEYS: per limit, its current and previous window's key. ARGV: now, then per limit its tokens,
// window (ms) and cost. Answers {0, left...} when all were counted, {i, left} when limit i refused.
const ALL_OR_NOTHING = `local now = tonumber(ARGV[1])
local left = {}
for i = 1, #KEYS / 2 do
  local tokens, window, cost = tonumber(ARGV[3 * i - 1]), tonumber(ARGV[3 * i]), tonumber(ARGV[3 * i + 1])
  local current = tonumber(redis.call("GET", KEYS[2 * i - 1]) or "0")
  local previous = tonumber(redis.call("GET", KEYS[2 * i]) or "0")
  left[i] = tokens - current - math.floor((1 - (now % window) / window) * previous)
  if cost > left[i] then return {i, left[i]} end
end
for i = 1, #KEYS / 2 do
  local window, cost = tonumber(ARGV[3 * i]), tonumber(ARGV[3 * i + 1])
  if redis.call("INCRBY", KEYS[2 * i - 1], cost) == cost then
    redis.call("PEXPIRE", KEYS[2 * i - 1], window * 2 + 1000)
  end
  left[i] = left[i] - cost
end
return {0, unpack(left)}`;
const ALL_OR_NOTHING_HASH = createHash("sha1").update(ALL_OR_NOTHING).digest("hex");

type ScriptClient = {
  evalsha(hash: string, keys: string[], args: unknown[]): Promise<unknown>;
  eval(script: string, keys: string[], args: unknown[]): Promise<unknown>;
};
const LOG_EVERY_MS = 10_000;
const UNIT_MS = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

function windowMs(name: string, window: string): number {
  const m = /^(\d+) ?([smhd])$/.exec(window);
  const ms = m ? Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS] : 0;
  if (!ms) throw new Error(`Rate limit "${name}": window "${window}" is not like "1 m"`);
  return ms;
}

function resolveSpecs(overrides: LimitOverrides = {}) {
  const specs = {} as Record<LimitName, { tokens: number; window: string; ms: number }>;
  for (const name of Object.keys(DEFAULT_LIMITS) as LimitName[]) {
    const spec = overrides[name] ?? DEFAULT_LIMITS[name];
    if (!Number.isInteger(spec.tokens) || spec.tokens < 1) {
      throw new Error(`Rate limit "${name}": tokens must be a positive integer`);
    }
    specs[name] = { tokens: spec.tokens, window: spec.window, ms: windowMs(name, spec.window) };
  }
  for (const name of Object.keys(overrides)) {
    if (!Object.hasOwn(DEFAULT_LIMITS, name)) throw new Error(`Unknown rate limit "${name}"`);
  }
  return specs;
}

const secondsUntil = (epochMs: number, now = Date.now()) =>
  Math.max(1, Math.ceil((epochMs - now) / 1000));

/** An error's code or class name only: messages can carry identifiers or commands. */
function errorKind(error: unknown): string {
  if (error && typeof error === "object") {
    const { code, name } = error as { code?: unknown; name?: unknown };
    if (typeof code === "string") return code;
    if (typeof name === "string") return name;
  }
  return "unknown error";
}

/**
 * Upstash's `reset` / rate-limiter-flexible's `msBeforeNext` are hints: with a sliding
 * window a request at reset may still be denied. Retry-After is a hint too.
 */
function fromUpstash(r: { success: boolean; limit: number; remaining: number; reset: number }) {
  return {
    success: r.success,
    limit: r.limit,
    remaining: Math.max(0, r.remaining),
    resetAt: r.reset,
    retryAfterSeconds: r.success ? 0 : secondsUntil(r.reset),
  } satisfies RateLimitResult;
}

/** A Map that empties itself when full: bounds @upstash/ratelimit's blocked-identifier cache. */
class BoundedMap<K, V> extends Map<K, V> {
  constructor(private readonly max: number) {
    super();
  }
  override set(key: K, value: V): this {
    if (this.size >= this.max && !this.has(key)) this.clear();
    return super.set(key, value);
  }
}

export function createRateLimits(config: RateLimitsConfig = {}): RateLimits {
  const specs = resolveSpecs(config.overrides);
  const prefix = config.prefix ?? "mailwarden:rl";
  const timeoutMs = config.timeoutMs ?? 2_000;
  const write = config.log ?? ((line: string) => console.error(line));

  let lastLogAt = 0;
  let suppressed = 0;
  const logFailure = (what: string, error: unknown) => {
    const now = Date.now();
    if (now - lastLogAt < LOG_EVERY_MS) {
      suppressed++;
      return;
    }
    const more = suppressed ? ` (+${suppressed} more since last line)` : "";
    lastLogAt = now;
    suppressed = 0;
    write(`[ratelimit] ${backend} backend failed: ${errorKind(error)} ${what}${more}`);
  };

  let backend: RateLimits["backend"];
  let check: (name: LimitName, identifier: string, cost: number) => Promise<RateLimitResult>;
  let allOrNothing: (checks: Required<LimitCheck>[]) => Promise<LimitRefusal | null>;
  let close = async () => {};
  let unavailable = () => false;
  let ping = async () => true;

  if (config.upstash || config.redisUrl) {
    let redis: ConstructorParameters<typeof Ratelimit>[0]["redis"];
    if (config.upstash) {
      backend = "upstash";
      const upstash = new UpstashRedis({
        url: config.upstash.url,
        token: config.upstash.token,
        enableTelemetry: false,
        retry: { retries: 1 },
      });
      redis = upstash;
      ping = async () => (await upstash.ping()) === "PONG";
    } else {
      backend = "redis";
      const client = new IORedis(config.redisUrl as string, {
        connectTimeout: timeoutMs,
        commandTimeout: timeoutMs,
        maxRetriesPerRequest: 1,
      });
      client.on("error", (error) => logFailure("(connection)", error));
      // Once a connection is lost, deny at once instead of queueing until the timeout.
      unavailable = () => client.status === "reconnecting" || client.status === "end";
      // Only evalsha/eval are called (see ioredis-adapter.ts); the type asks for more.
      redis = upstashCompatibleRedis(client) as unknown as typeof redis;
      ping = async () => !unavailable() && (await client.ping()) === "PONG";
      close = async () => {
        if (client.status === "ready") await client.quit().catch(() => client.disconnect());
        else client.disconnect();
      };
    }
    const limiters = new Map<LimitName, Ratelimit>();
    for (const name of Object.keys(specs) as LimitName[]) {
      const { tokens, window } = specs[name];
      limiters.set(
        name,
        new Ratelimit({
          redis,
          limiter: Ratelimit.slidingWindow(tokens, window as Duration),
          prefix: `${prefix}:${name}`,
          // Its default (5 s) answers success:true on timeout: fail open. We time out ourselves.
          timeout: 0,
          // Its default cache of blocked identifiers is an unbounded Map.
          ephemeralCache: new BoundedMap(10_000),
          analytics: false,
          enableTelemetry: false,
        }),
      );
    }
    check = async (name, identifier, cost) => {
      if (unavailable()) throw Object.assign(new Error(), { code: "REDIS_UNAVAILABLE" });
      const r = await (limiters.get(name) as Ratelimit).limit(identifier, { rate: cost });
      if (r.reason === "timeout") throw new Error("timeout");
      return fromUpstash(r);
    };
    const scripts = redis as unknown as ScriptClient;
    allOrNothing = async (checks) => {
      if (unavailable()) throw Object.assign(new Error(), { code: "REDIS_UNAVAILABLE" });
      const now = Date.now();
      const keys: string[] = [];
      const args: number[] = [now];
      const resets: number[] = [];
      for (const { name, identifier, cost } of checks) {
        const { tokens, ms } = specs[name];
        const current = Math.floor(now / ms);
        // The library's keys: its prefix (ours plus the limit's name), the identifier, the window.
        const key = `${prefix}:${name}:${identifier}`;
        keys.push(`${key}:${current}`, `${key}:${current - 1}`);
        args.push(tokens, ms, cost);
        resets.push((current + 1) * ms);
      }
      let answer: unknown;
      try {
        answer = await scripts.evalsha(ALL_OR_NOTHING_HASH, keys, args);
      } catch (error) {
        if (!String(error).includes("NOSCRIPT")) throw error;
        answer = await scripts.eval(ALL_OR_NOTHING, keys, args);
      }
      const [refused, left] = Array.isArray(answer) ? answer : [];
      if (refused === 0) return null;
      const index = typeof refused === "number" ? refused - 1 : -1;
      const at = checks[index];
      // Anything else than the script's answer is a failure, never a pass.
      if (!at || !Number.isInteger(left)) {
        throw Object.assign(new Error(), { code: "UNEXPECTED_REPLY" });
      }
      const resetAt = resets[index] as number;
      return {
        name: at.name,
        identifier: at.identifier,
        result: {
          success: false,
          limit: specs[at.name].tokens,
          remaining: Math.max(0, left),
          resetAt,
          retryAfterSeconds: secondsUntil(resetAt),
        },
      };
    };
  } else {
    backend = "memory";
    const limiters = new Map<LimitName, RateLimiterMemory>();
    for (const name of Object.keys(specs) as LimitName[]) {
      const { tokens, ms } = specs[name];
      limiters.set(
        name,
        new RateLimiterMemory({
          points: tokens,
          duration: ms / 1000,
          keyPrefix: `${prefix}:${name}`,
        }),
      );
    }
    // Asked one after the other, one limitAll call at a time (what a call counts between its
    // awaits would refuse another's send that fits); a refusal gives back what the ones before
    // it counted, and its own cost (a refused consume counts in memory).
    const inTurn = async (checks: Required<LimitCheck>[]) => {
      const counted: (Required<LimitCheck> & { resetAt: number })[] = [];
      for (const at of checks) {
        const result = await check(at.name, at.identifier, at.cost);
        counted.push({ ...at, resetAt: result.resetAt });
        if (result.success) continue;
        const now = Date.now();
        await Promise.all(
          counted
            .filter(({ resetAt }) => now + GIVE_BACK_MARGIN_MS < resetAt)
            .map(({ name, identifier, cost }) =>
              (limiters.get(name) as RateLimiterMemory).reward(identifier, cost),
            ),
        );
        const left = await (limiters.get(at.name) as RateLimiterMemory).get(at.identifier);
        const remaining = Math.max(0, result.limit - (left?.consumedPoints ?? 0));
        return { name: at.name, identifier: at.identifier, result: { ...result, remaining } };
      }
      return null;
    };
    let turns: Promise<unknown> = Promise.resolve();
    allOrNothing = (checks) => {
      const turn = turns.then(() => inTurn(checks));
      // A turn that hung would hold every later one: the next goes once this one timed out.
      turns = inTime(turn).catch(() => {});
      return turn;
    };
    check = async (name, identifier, cost) => {
      const tokens = specs[name].tokens;
      const limiter = limiters.get(name) as RateLimiterMemory;
      const now = Date.now();
      try {
        const res = await limiter.consume(identifier, cost);
        const resetAt = now + Math.max(0, res.msBeforeNext);
        return {
          success: true,
          limit: tokens,
          remaining: res.remainingPoints,
          resetAt,
          retryAfterSeconds: 0,
        };
      } catch (rejection) {
        if (!(rejection instanceof RateLimiterRes)) throw rejection;
        const resetAt = now + Math.max(0, rejection.msBeforeNext);
        return {
          success: false,
          limit: tokens,
          remaining: 0,
          resetAt,
          retryAfterSeconds: secondsUntil(resetAt, now),
        };
      }
    };
  }

  /** `work`'s answer, or a TIMEOUT error once the check timeout has passed. */
  const inTime = async <T>(work: Promise<T>): Promise<T> => {
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        work,
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(Object.assign(new Error(), { code: "TIMEOUT" })),
            timeoutMs,
          );
          timer.unref?.();
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  };
  const checkCost = (cost: number) => {
    if (!Number.isInteger(cost) || cost < 1)
      throw new RangeError("cost must be a positive integer");
  };

  const knownName = (name: LimitName) => {
    if (!Object.hasOwn(specs, name)) throw new Error(`Unknown rate limit "${name}"`);
  };
  /** The answer when the store failed: denied, not counted, "unavailable". */
  const failedClosed = (name: LimitName, error: unknown): RateLimitResult => {
    logFailure(`denying "${name}" (fail closed)`, error);
    return {
      success: false,
      limit: specs[name].tokens,
      remaining: 0,
      resetAt: Date.now() + FAIL_CLOSED_RETRY_SECONDS * 1000,
      retryAfterSeconds: FAIL_CLOSED_RETRY_SECONDS,
      unavailable: true,
    };
  };

  const cache = new Map<LimitName, Limiter>();
  const get = (name: LimitName): Limiter => {
    knownName(name);
    let limiter = cache.get(name);
    if (!limiter) {
      limiter = {
        async limit(identifier, cost = 1) {
          checkCost(cost);
          try {
            return await inTime(check(name, identifier, cost));
          } catch (error) {
            return failedClosed(name, error);
          }
        },
      };
      cache.set(name, limiter);
    }
    return limiter;
  };

  const limitAll: RateLimits["limitAll"] = async (checks) => {
    const seen = new Set<string>();
    const all = checks.map(({ name, identifier, cost = 1 }) => {
      knownName(name);
      checkCost(cost);
      // The script checks every cost against the count before any: a pair twice would pass both.
      const pair = JSON.stringify([name, identifier]);
      if (seen.has(pair)) throw new RangeError(`limitAll: "${name}" twice for one identifier`);
      seen.add(pair);
      return { name, identifier, cost };
    });
    const first = all[0];
    if (!first) return null;
    try {
      return await inTime(allOrNothing(all));
    } catch (error) {
      return { ...first, result: failedClosed(first.name, error) };
    }
  };

  const pingWithTimeout = async () => {
    try {
      return await inTime(ping());
    } catch {
      return false;
    }
  };

  return { get, limitAll, backend, ping: pingWithTimeout, close: () => close() };
}

/** Headers for a 429 answer (RateLimit-* per the IETF draft: Reset is seconds from now). */
export function rateLimitedResponseHeaders(result: RateLimitResult): {
  "Retry-After": string;
  "RateLimit-Limit": string;
  "RateLimit-Remaining": string;
  "RateLimit-Reset": string;
} {
  const reset = Math.max(0, Math.ceil((result.resetAt - Date.now()) / 1000));
  return {
    "Retry-After": String(Math.max(1, result.retryAfterSeconds)),
    "RateLimit-Limit": String(result.limit),
    "RateLimit-Remaining": String(result.remaining),
    "RateLimit-Reset": String(reset),
  };
}
