import fs from "node:fs";
import path from "node:path";
import { z } from "zod";

// The one place that reads process.env. Every setting is validated here; a secret may also be
// given as NAME_FILE (a path, for secret managers). A bad or half-given setting stops start-up
// with a message naming the variable.

export class EnvError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
    this.name = "EnvError";
  }
}

const SECRET_NAMES = [
  "AUTH_SECRET",
  "AUDIT_CHAIN_KEY",
  "DATABASE_URL",
  "TOKEN_ENCRYPTION_KEYS",
  "GOOGLE_CLIENT_SECRET",
  "MICROSOFT_CLIENT_SECRET",
  "UPSTASH_REDIS_REST_TOKEN",
  "REDIS_URL",
] as const;

const optionalText = z
  .string()
  .trim()
  .transform((v) => (v === "" ? undefined : v))
  .optional();

const port = z.coerce.number().int().min(1).max(65535);

const flag = z
  .enum(["true", "false", "1", "0", ""])
  .optional()
  .transform((v) => (v === undefined || v === "" ? undefined : v === "true" || v === "1"));

const schema = z.object({
  NODE_ENV: z.enum(["development", "production", "test"]).default("development"),
  APP_URL: z.url({ protocol: /^https?$/ }).default("http://localhost:3000"),
  AUTH_SECRET: optionalText,
  AUDIT_CHAIN_KEY: optionalText.pipe(
    z.string().min(32, { error: "must be at least 32 characters" }).optional(),
  ),
  DATABASE_URL: optionalText.pipe(
    z
      .url({ protocol: /^postgres(ql)?$/, error: "must be a postgres:// or postgresql:// URL" })
      .optional(),
  ),
  MAILWARDEN_DATA_DIR: z.string().default(".data"),
  TOKEN_ENCRYPTION_KEYS: optionalText,
  GOOGLE_CLIENT_ID: optionalText,
  GOOGLE_CLIENT_SECRET: optionalText,
  MICROSOFT_CLIENT_ID: optionalText,
  MICROSOFT_CLIENT_SECRET: optionalText,
  MICROSOFT_TENANT: z
    .string()
    .regex(/^(common|organizations|consumers|[0-9a-f-]{36}|[a-z0-9.-]+\.[a-z]{2,})$/i, {
      error: "must be common, organizations, consumers, a tenant id or a tenant domain",
    })
    .default("organizations"),
  UPSTASH_REDIS_REST_URL: optionalText.pipe(z.url({ protocol: /^https?$/ }).optional()),
  UPSTASH_REDIS_REST_TOKEN: optionalText,
  REDIS_URL: optionalText.pipe(z.url({ protocol: /^rediss?$/ }).optional()),
  RATE_LIMITS: optionalText.pipe(
    z
      .string()
      .transform((text, ctx) => {
        try {
          return JSON.parse(text) as unknown;
        } catch {
          ctx.addIssue({ code: "custom", message: "must be JSON" });
          return z.NEVER;
        }
      })
      .pipe(
        z.record(
          z.string(),
          z.strictObject({
            tokens: z.number().int().positive(),
            window: z.string().regex(/^\d+ ?[smhd]$/, { error: 'like "1 m", "1 h" or "1 d"' }),
          }),
        ),
      )
      .optional(),
  ),
  TRUSTED_PROXY_HOPS: z.coerce.number().int().min(0).max(10).default(0),
  /** How often the mailbox health check runs (one instance at a time). */
  MAILBOX_HEALTH_INTERVAL_SECONDS: z.coerce.number().int().min(10).max(86_400).default(300),
  /** A mailbox unused this long gets a connection test (TLS + AUTH, no DATA) by the check. */
  MAILBOX_HEALTH_IDLE_SECONDS: z.coerce.number().int().min(60).max(604_800).default(3_600),
  /** Notification events for one person within this many seconds go out as one digest. */
  NOTIFICATION_DIGEST_SECONDS: z.coerce.number().int().min(0).max(3_600).default(120),
  /** A webhook delivery is retried with backoff until this many hours after its event. */
  WEBHOOK_DELIVERY_DEADLINE_HOURS: z.coerce.number().int().min(1).max(720).default(72),
  /** After a secret rotation the previous secret signs beside the new one this many hours. */
  WEBHOOK_SECRET_OVERLAP_HOURS: z.coerce.number().int().min(0).max(720).default(24),
  // Operators of the deployment (lib/auth/operators.ts): they pull the switches of every
  // organisation and see the events without one (key rotation, global switches, unknown keys).
  OPERATOR_EMAILS: optionalText
    .pipe(
      z
        .string()
        .transform((text) =>
          text
            .split(",")
            .map((e) => e.trim().toLowerCase())
            .filter((e) => e !== ""),
        )
        .pipe(z.array(z.email({ error: "must be comma-separated email addresses" })))
        .optional(),
    )
    .transform((list) => list ?? []),
  // Days the system chain ('': events of no organisation, holding strangers' IP addresses)
  // keeps its events; the daily retention purges older ones as it does an organisation's.
  // Unset keeps them forever. At most 3650, as an organisation's setting.
  SYSTEM_AUDIT_RETENTION_DAYS: optionalText.pipe(
    z
      .string()
      .regex(/^\d{1,9}$/, { error: "must be a whole number of days" })
      .optional()
      .pipe(
        z.coerce
          .number<string | undefined>({ error: "must be a whole number of days" })
          .int({ error: "must be a whole number of days" })
          .min(1, { error: "must be at least 1 day; leave unset to keep forever" })
          .max(3650, { error: "must be at most 3650 days" })
          .optional(),
      ),
  ),
  // Concurrent SMTP connections per mailbox, across every process and instance (lease rows
  // in the database, lib/mail/connection-slots.ts). Microsoft 365 refuses a fourth with 432 4.3.2.
  SMTP_MAX_CONNECTIONS_MICROSOFT: z.coerce.number().int().min(1).max(50).default(3),
  SMTP_MAX_CONNECTIONS_GOOGLE: z.coerce.number().int().min(1).max(50).default(3),
  SMTP_MAX_CONNECTIONS_DEMO: z.coerce.number().int().min(1).max(50).default(3),
  // Messages a minute per mailbox: the default of the synchronous route's per-mailbox minute
  // limit (sendMailboxMinute<Provider>, RATE_LIMITS wins) and the pace of queued sends.
  SMTP_PER_MINUTE_MICROSOFT: z.coerce.number().int().min(1).max(100_000).default(30),
  SMTP_PER_MINUTE_GOOGLE: z.coerce.number().int().min(1).max(100_000).default(60),
  SMTP_PER_MINUTE_DEMO: z.coerce.number().int().min(1).max(100_000).default(600),
  /** The job queue (lib/queue): pg-boss's own pool on PostgreSQL, and how often idle workers poll. */
  QUEUE_POOL_SIZE: z.coerce.number().int().min(1).max(100).default(4),
  QUEUE_POLL_SECONDS: z.coerce.number().min(0.5).max(60).default(1),
  /** Queued messages (lib/mail/queued.ts): mailboxes drained at once in this process. */
  QUEUE_CONCURRENCY: z.coerce.number().int().min(1).max(1_000).default(32),
  /**
   * A queued message not sent this long after it was accepted has failed: still failing
   * transiently, or held by a pause or a limit (it is never sent late).
   */
  QUEUE_DEADLINE_HOURS: z.coerce.number().min(0.001).max(720).default(24),
  /** First retry delay of a queued message; doubled on each further attempt, at most 30 min. */
  QUEUE_RETRY_BASE_SECONDS: z.coerce.number().min(0.1).max(3_600).default(30),
  /**
   * An attempt (queued, or a synchronous send) still `sending` this long after its claim was
   * interrupted (its process died).
   * Longer than the slowest live attempt: 4 tries (2 transient retries, 1 forced token refresh)
   * of up to 15 + 15 + 60 s of nodemailer timeouts each, 360 s.
   */
  QUEUE_SEND_LEASE_SECONDS: z.coerce.number().int().min(5).max(3_600).default(600),
  DEMO_MODE: flag,
  DEMO_OIDC_PORT: port.default(3001),
  DEMO_SMTP_PORT: port.default(2465),
});

export type EnvSource = Record<string, string | undefined>;

type RawEnv = z.infer<typeof schema>;

export type Env = RawEnv & {
  dataDir: string;
  isDemo: boolean;
  demoIssuer: string;
  google?: { clientId: string; clientSecret: string };
  microsoft?: { clientId: string; clientSecret: string; tenant: string };
};

function readSecretFiles(source: EnvSource, problems: string[]): Record<string, string> {
  const values: Record<string, string> = {};
  for (const name of SECRET_NAMES) {
    const file = source[`${name}_FILE`];
    if (!file) continue;
    if (source[name]) {
      problems.push(`${name} and ${name}_FILE are both set; set only one`);
      continue;
    }
    try {
      values[name] = fs.readFileSync(file, "utf8").trim();
    } catch {
      problems.push(`${name}_FILE: cannot read the file it names`);
    }
  }
  return values;
}

function pair(
  problems: string[],
  idName: string,
  id: string | undefined,
  secretName: string,
  secret: string | undefined,
) {
  if (id && !secret) problems.push(`${idName} is set but ${secretName} is missing`);
  if (!id && secret) problems.push(`${secretName} is set but ${idName} is missing`);
  return id && secret ? { clientId: id, clientSecret: secret } : undefined;
}

const LOOPBACK_HOSTS = new Set(["localhost", "127.0.0.1", "[::1]"]);

function isPlainHttpElsewhere(appUrl: string): boolean {
  const url = new URL(appUrl);
  return url.protocol === "http:" && !LOOPBACK_HOSTS.has(url.hostname);
}

export function parseEnv(source: EnvSource): Env {
  const problems: string[] = [];
  const fromFiles = readSecretFiles(source, problems);
  const parsed = schema.safeParse({ ...source, ...fromFiles });
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      problems.push(`${issue.path.join(".")}: ${issue.message}`);
    }
    throw new EnvError(problems);
  }
  const raw = parsed.data;
  const google = pair(
    problems,
    "GOOGLE_CLIENT_ID",
    raw.GOOGLE_CLIENT_ID,
    "GOOGLE_CLIENT_SECRET",
    raw.GOOGLE_CLIENT_SECRET,
  );
  const ms = pair(
    problems,
    "MICROSOFT_CLIENT_ID",
    raw.MICROSOFT_CLIENT_ID,
    "MICROSOFT_CLIENT_SECRET",
    raw.MICROSOFT_CLIENT_SECRET,
  );
  if (Boolean(raw.UPSTASH_REDIS_REST_URL) !== Boolean(raw.UPSTASH_REDIS_REST_TOKEN)) {
    problems.push("UPSTASH_REDIS_REST_URL and UPSTASH_REDIS_REST_TOKEN must be set together");
  }
  const hasProvider = Boolean(google || ms);
  const isProduction = raw.NODE_ENV === "production";
  // Demo mode is the default only where no provider is configured, and never silently in production.
  const isDemo = raw.DEMO_MODE ?? (!hasProvider && !isProduction);
  if (isProduction && !isDemo) {
    if (!raw.AUTH_SECRET) problems.push("AUTH_SECRET is required in production");
    if (!raw.AUDIT_CHAIN_KEY) {
      problems.push("AUDIT_CHAIN_KEY (or AUDIT_CHAIN_KEY_FILE) is required in production");
    }
    if (!raw.TOKEN_ENCRYPTION_KEYS) {
      problems.push(
        "TOKEN_ENCRYPTION_KEYS (or TOKEN_ENCRYPTION_KEYS_FILE) is required in production",
      );
    }
    if (!raw.DATABASE_URL) problems.push("DATABASE_URL is required in production");
    if (!hasProvider) {
      problems.push(
        "configure GOOGLE_CLIENT_ID/SECRET or MICROSOFT_CLIENT_ID/SECRET, or set DEMO_MODE=true",
      );
    }
  }
  // Auth.js marks cookies Secure only over https; production must never hand them out in clear.
  if (isProduction && isPlainHttpElsewhere(raw.APP_URL)) {
    problems.push(
      `APP_URL must be an https:// URL in production (got ${new URL(raw.APP_URL).origin}); ` +
        "plain http is allowed only for localhost",
    );
  }
  if (problems.length > 0) throw new EnvError(problems);
  return {
    ...raw,
    APP_URL: raw.APP_URL.replace(/\/$/, ""),
    dataDir: path.resolve(raw.MAILWARDEN_DATA_DIR),
    isDemo,
    demoIssuer: `http://localhost:${raw.DEMO_OIDC_PORT}`,
    google,
    microsoft: ms && { ...ms, tenant: raw.MICROSOFT_TENANT },
  };
}

let cached: Env | undefined;

export function env(): Env {
  cached ??= parseEnv(process.env);
  return cached;
}

/** `next build` must never open the embedded database. */
export function isBuildPhase(): boolean {
  return process.env.NEXT_PHASE === "phase-production-build";
}
