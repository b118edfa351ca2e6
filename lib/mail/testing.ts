// Test and bench only: the real demo OAuth provider and a real demo SMTP server on free ports,
// registered as the "demo" provider, plus helpers to connect a mailbox, make a key and call the
// route the way an HTTP client would.
import { randomUUID } from "node:crypto";
import { demoInboxDir, ensureDemoCertificate, readDemoInbox } from "@/lib/demo";
import {
  type AuthOverride,
  type DemoBehaviour,
  type DemoSmtp,
  type DemoSmtpLimits,
  startDemoSmtp,
} from "@/lib/demo/smtp";
import { env } from "@/lib/env";
import { registerMailProvider, smtpLimitsFor } from "@/lib/oauth/providers";
import { type DemoTestbed, startDemoTestbed } from "@/lib/oauth/testing/demo";
import { connectDemoMailbox, type Person } from "@/lib/oauth/testing/fixtures";
import { createRateLimits, type LimitOverrides, type RateLimits } from "@/lib/ratelimit";
import { withRefusalAudit } from "@/lib/ratelimit/runtime";
import { memberContext } from "@/lib/testing/context";
import { createApiKey } from "./api-keys";
import { useDemoInboxDataDir } from "./send-queued";
import type { SmtpEndpoint } from "./transport";

export type SendTestbed = {
  oauth: DemoTestbed;
  smtp: DemoSmtp;
  /** Where the SMTP server keeps what it accepted (apart from the app's own demo inbox). */
  dataDir: string;
  ca: string;
  endpoint: SmtpEndpoint;
  /** Answer AUTH like Microsoft (535 5.7.139, 454 …) while set. */
  authOverride: AuthOverride | null;
  /** Answer a mailbox's messages like a provider at its limits (5.2.0, 5.4.5 …) while set. */
  behaviour: ((mailbox: string) => DemoBehaviour | null) | null;
  inboxCount(): Promise<number>;
  readInbox(): ReturnType<typeof readDemoInbox>;
  /** Point the demo provider at another SMTP endpoint (another server, another CA). */
  useEndpoint(endpoint: SmtpEndpoint): void;
  close(): Promise<void>;
};

export async function startSendTestbed(
  options: { limits?: DemoSmtpLimits } = {},
): Promise<SendTestbed> {
  const oauth = await startDemoTestbed();
  const tls = await ensureDemoCertificate(oauth.dataDir);
  const bed = { authOverride: null, behaviour: null } as SendTestbed;
  const smtp = await startDemoSmtp({
    port: 0,
    dataDir: oauth.dataDir,
    tls,
    mode: "implicit",
    introspect: oauth.introspect,
    authOverride: (ctx) => bed.authOverride?.(ctx) ?? null,
    behaviour: (mailbox) => bed.behaviour?.(mailbox) ?? null,
    limits: options.limits,
  });
  const endpoint: SmtpEndpoint = {
    host: "localhost",
    port: smtp.port,
    secure: true,
    requireTLS: false,
    ca: tls.ca,
    ...smtpLimitsFor("demo"),
  };
  Object.assign(bed, {
    oauth,
    smtp,
    dataDir: oauth.dataDir,
    ca: tls.ca,
    endpoint,
    inboxCount: async () => (await readInboxNames(oauth.dataDir)).length,
    readInbox: () => readDemoInbox(oauth.dataDir),
    useEndpoint: (next: SmtpEndpoint) => registerMailProvider({ ...oauth.provider, smtp: next }),
    close: async () => {
      await smtp.close();
      await oauth.close();
    },
  });
  bed.useEndpoint(endpoint);
  // An interrupted queued attempt is reconciled against this server's record.
  useDemoInboxDataDir(oauth.dataDir);
  return bed;
}

async function readInboxNames(dataDir: string): Promise<string[]> {
  const { readdir } = await import("node:fs/promises");
  try {
    return (await readdir(demoInboxDir(dataDir))).filter((name) => name.endsWith(".json"));
  } catch {
    return [];
  }
}

export async function connectMailbox(person: Person, email?: string): Promise<string> {
  const address = email ?? `box-${randomUUID().slice(0, 8)}@example.test`;
  const { result } = await connectDemoMailbox(person, { email: address });
  if (result.kind !== "connected") {
    const reason = "reason" in result ? ` (${String(result.reason)})` : "";
    throw new Error(`mailbox not connected: ${result.kind}${reason}`);
  }
  return result.mailboxId;
}

export async function makeApiKey(person: Person, allowedMailboxIds?: string[]) {
  return createApiKey({
    ctx: memberContext(person.orgId, person.user, "owner", {
      ip: "203.0.113.9",
      userAgent: "vitest",
    }),
    name: `key ${randomUUID().slice(0, 6)}`,
    allowedMailboxIds: allowedMailboxIds ?? null,
  });
}

export type PostOptions = {
  token?: string | null;
  idempotencyKey?: string;
  contentType?: string;
  headers?: Record<string, string>;
};

/** A real Request for the route handler; a string body is sent as is. */
export function sendRequest(body: unknown, opts: PostOptions = {}): Request {
  const headers: Record<string, string> = {
    "content-type": opts.contentType ?? "application/json",
    "user-agent": "vitest",
    ...opts.headers,
  };
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  if (opts.idempotencyKey !== undefined) headers["idempotency-key"] = opts.idempotencyKey;
  return new Request("http://localhost/api/v1/messages", {
    method: "POST",
    headers,
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
}

/**
 * Waits, when less than `needMs` is left of the current minute, for the next one. Redis-backed
 * limits (Upstash's sliding window) turn over on the clock's minute, and just after a turn the
 * last window's count is weighted below the limit, so one more request passes: a test that
 * counts refusals must not straddle a turn.
 */
export async function clearOfMinuteTurn(needMs = 10_000): Promise<void> {
  const left = 60_000 - (Date.now() % 60_000);
  if (left < needMs) await new Promise((resolve) => setTimeout(resolve, left + 50));
}

// Seam over lib/ratelimit/runtime.ts's process-wide holder: the same backend the environment
// picks (Redis when REDIS_URL is set), with other numbers, until the returned function runs.
// Refusals are not audited unless `audited` (as rateLimits() audits them outside tests): a test
// about a refusal's audit event opts in.
const limitsHolder = globalThis as typeof globalThis & { __mailwardenRateLimits?: RateLimits };

export function useRateLimits(
  overrides: LimitOverrides,
  options: { redisUrl?: string; audited?: boolean } = {},
): () => Promise<void> {
  const previous = limitsHolder.__mailwardenRateLimits;
  const replacement = createRateLimits({
    redisUrl: options.redisUrl ?? env().REDIS_URL,
    overrides,
    prefix: `mailwarden:test:${randomUUID().slice(0, 8)}`,
  });
  limitsHolder.__mailwardenRateLimits = options.audited
    ? withRefusalAudit(replacement)
    : replacement;
  return async () => {
    limitsHolder.__mailwardenRateLimits = previous;
    await replacement.close();
  };
}
