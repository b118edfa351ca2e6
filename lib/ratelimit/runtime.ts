import "server-only";
import { auditRateLimitRefusal } from "@/lib/audit/refusals";
import { type Env, env } from "@/lib/env";
import { UserFacingError } from "@/lib/errors";
import {
  AUDIT_SAMPLING_LIMITS,
  createRateLimits,
  type LimitName,
  type LimitOverrides,
  type RateLimitResult,
  type RateLimits,
} from "./index";

/** A rate limit said no; map it to 429 with Retry-After (or a form message) in one place. */
export class RateLimitedError extends UserFacingError {
  constructor(
    readonly limit: LimitName,
    readonly retryAfterSeconds: number,
  ) {
    super(`Too many requests. Try again in ${retryAfterSeconds} seconds.`);
    this.name = "RateLimitedError";
  }
}

/**
 * The limit store (Redis, Upstash) could not answer, so the request was refused without being
 * counted. Not the caller's doing: they read "temporarily unavailable" and the API answers 503,
 * so nobody goes looking for a flood of attempts that never happened.
 */
export class LimitStoreUnavailableError extends UserFacingError {
  constructor(
    readonly limit: LimitName,
    readonly retryAfterSeconds: number,
  ) {
    super(
      `Mailwarden is temporarily unavailable. Try again in ${retryAfterSeconds} seconds; if it lasts, tell your administrator.`,
    );
    this.name = "LimitStoreUnavailableError";
  }
}

// One set of limiters per process, kept across `next dev` module reloads: the in-memory
// backend would otherwise forget every count on each reload.
const holder = globalThis as typeof globalThis & { __mailwardenRateLimits?: RateLimits };

/**
 * Every refusal of every limiter is audited (sampled: one event per limiter key per window),
 * wherever the 429 or the form message is then made; the audit log's own sampling limits excepted.
 */
export function withRefusalAudit(limits: RateLimits): RateLimits {
  // Not awaited: a caller may hold a transaction (a token refresh does), and on PGlite's one
  // connection a second transaction would wait for it forever.
  // A store failure is no refusal by a limit: the store's own health says it.
  const audit = (name: LimitName, identifier: string, result: RateLimitResult) => {
    if (!result.success && !result.unavailable && !AUDIT_SAMPLING_LIMITS.has(name))
      void auditRateLimitRefusal(name, identifier, result.retryAfterSeconds);
  };
  return {
    ...limits,
    backend: limits.backend,
    ping: () => limits.ping(),
    close: () => limits.close(),
    async limitAll(checks) {
      const refused = await limits.limitAll(checks);
      if (refused) audit(refused.name, refused.identifier, refused.result);
      return refused;
    },
    get(name) {
      const limiter = limits.get(name);
      return {
        async limit(identifier, cost) {
          const result = await limiter.limit(identifier, cost);
          audit(name, identifier, result);
          return result;
        },
      };
    },
  };
}

/**
 * The synchronous route's per-mailbox minute limits follow SMTP_PER_MINUTE_<PROVIDER>, the same
 * numbers the queue paces by; an entry in RATE_LIMITS still wins.
 */
export function sendMinuteLimits(e: Env): LimitOverrides {
  return {
    sendMailboxMinuteMicrosoft: { tokens: e.SMTP_PER_MINUTE_MICROSOFT, window: "1 m" },
    sendMailboxMinuteGoogle: { tokens: e.SMTP_PER_MINUTE_GOOGLE, window: "1 m" },
    sendMailboxMinuteDemo: { tokens: e.SMTP_PER_MINUTE_DEMO, window: "1 m" },
  };
}

/** The process's limiters: Upstash, then a self-hosted Redis, else in-memory (one process). */
export function rateLimits(): RateLimits {
  if (holder.__mailwardenRateLimits) return holder.__mailwardenRateLimits;
  const e = env();
  holder.__mailwardenRateLimits = withRefusalAudit(
    createRateLimits({
      upstash:
        e.UPSTASH_REDIS_REST_URL && e.UPSTASH_REDIS_REST_TOKEN
          ? { url: e.UPSTASH_REDIS_REST_URL, token: e.UPSTASH_REDIS_REST_TOKEN }
          : undefined,
      redisUrl: e.REDIS_URL,
      overrides: {
        ...sendMinuteLimits(e),
        ...(e.RATE_LIMITS as LimitOverrides | undefined),
      },
    }),
  );
  return holder.__mailwardenRateLimits;
}

/**
 * Counts one request against each identifier; throws LimitStoreUnavailableError when the store
 * could not answer, else RateLimitedError on a denial.
 */
export async function enforceRateLimit(name: LimitName, identifiers: string[]): Promise<void> {
  const results: RateLimitResult[] = [];
  for (const identifier of identifiers) {
    results.push(await rateLimits().get(name).limit(identifier));
  }
  const denied = results.filter((r) => !r.success);
  if (denied.length === 0) return;
  const unreachable = denied.find((r) => r.unavailable);
  if (unreachable) throw new LimitStoreUnavailableError(name, unreachable.retryAfterSeconds);
  throw new RateLimitedError(name, Math.max(...denied.map((r) => r.retryAfterSeconds)));
}

/** The limit store as the health check and the security page report it. */
export async function limitStoreStatus(): Promise<{
  backend: RateLimits["backend"];
  ok: boolean;
}> {
  const limits = rateLimits();
  return { backend: limits.backend, ok: await limits.ping() };
}

/**
 * A download that streams a whole activity log or a person's data (`dataExport`, per person):
 * the plain-text answer to send instead when the limit refuses it, or null.
 */
export async function downloadRefusal(userId: string): Promise<Response | null> {
  const result = await rateLimits().get("dataExport").limit(`user:${userId}`);
  if (result.success) return null;
  const text = result.unavailable
    ? "The rate-limit store does not answer; nothing was exported. Try again shortly."
    : `Too many exports: at most ${result.limit} an hour. Try again in ${result.retryAfterSeconds} seconds.`;
  return new Response(`${text}\n`, {
    status: result.unavailable ? 503 : 429,
    headers: {
      "content-type": "text/plain; charset=utf-8",
      "cache-control": "no-store",
      "retry-after": String(Math.max(1, result.retryAfterSeconds)),
    },
  });
}
