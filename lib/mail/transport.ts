import "server-only";
import { createHash } from "node:crypto";
import nodemailer, {
  type SMTPPoolOptions,
  type SMTPTransportOptions,
  type Transporter,
} from "nodemailer";
import { readDemoCa } from "@/lib/demo";
import { env } from "@/lib/env";
import { ProviderNotConfiguredError } from "@/lib/oauth/errors";
import { getMailProvider, type MailProvider, type SmtpSettings } from "@/lib/oauth/providers";
import { getAccessToken } from "@/lib/oauth/tokens";
import { MailboxConnections, trackBodyProgress } from "./connection-pool";
import { releaseAllSlots } from "./connection-slots";

// The connections of each mailbox (lib/mail/connection-pool.ts: one single-connection nodemailer
// pool per lease, at most the provider's `maxConnections` across every process), cached for the
// process and replaced when the mailbox's grant changes. Tokens come from the token lifecycle
// through XOAUTH2's provisionCallback, never from nodemailer's own OAuth2 client (it ignores
// rotated refresh tokens and sends no scope).
//
// TLS (ARCHITECTURE.md, Security practices 9): implicit TLS or STARTTLS with requireTLS, TLS 1.2 at least, and
// certificate checks always on. The demo server's self-signed chain is trusted by giving its CA.

/** Which mailbox, as which identity; `generation` changes whenever its grant does. */
export type MailboxTransportTarget = {
  mailboxId: string;
  address: string;
  provider: string;
  /** e.g. the access token's expiry: a refreshed or reconnected grant gets fresh connections. */
  generation: string;
};

/**
 * The provider's SMTP settings plus an optional trust anchor. The `ca` member is the test
 * seam: a provider registered with registerMailProvider may carry it (the demo CA of a
 * temporary data folder); it only ever adds trust, it never turns verification off.
 */
export type SmtpEndpoint = SmtpSettings & { ca?: string };

export type MailboxTransport = MailboxConnections;

type Entry = {
  key: string;
  mailboxId: string;
  connections: MailboxConnections;
  lastUsedAt: number;
  /** The token last handed to nodemailer: the one to name as rejected when it asks to renew. */
  lastToken: string | null;
};

const IDLE_CLOSE_MS = 5 * 60_000;
const SWEEP_EVERY_MS = 60_000;
// Hand nodemailer a token a minute before it expires so a pooled connection never AUTHs with
// one that lapses mid-conversation.
const TOKEN_EXPIRY_MARGIN_MS = 60_000;
// A connection for a test is one of the mailbox's counted connections: it waits this long at
// most for a lease.
const PROBE_LEASE_WAIT_MS = 15_000;

type Holder = {
  entries: Map<string, Entry>;
  sweeper?: NodeJS.Timeout;
};

// Kept on globalThis so `next dev` module reloads do not orphan open SMTP connections.
const holder = globalThis as typeof globalThis & { __mailwardenTransports?: Holder };
holder.__mailwardenTransports ??= { entries: new Map() };
const state = holder.__mailwardenTransports;

function startSweeper(): void {
  if (state.sweeper) return;
  state.sweeper = setInterval(() => {
    const cutoff = Date.now() - IDLE_CLOSE_MS;
    for (const [mailboxId, entry] of state.entries) {
      if (entry.lastUsedAt < cutoff && entry.connections.size === 0) {
        state.entries.delete(mailboxId);
        void entry.connections.closeAll();
      }
    }
    if (state.entries.size === 0) stopSweeper();
  }, SWEEP_EVERY_MS);
  state.sweeper.unref();
}

function stopSweeper(): void {
  if (state.sweeper) clearInterval(state.sweeper);
  state.sweeper = undefined;
}

async function endpointFor(provider: MailProvider): Promise<SmtpEndpoint> {
  const smtp: SmtpEndpoint = provider.smtp;
  if (smtp.ca !== undefined || provider.id !== "demo") return smtp;
  // Without the demo CA the system trust store applies, and the demo certificate is refused.
  const ca = await demoCa(env().dataDir);
  return ca === undefined ? smtp : { ...smtp, ca };
}

// The demo CA is created on first start and not replaced while the process runs, so it is read
// once per data folder rather than from disk on every send; a failed read is tried again.
const demoCas = new Map<string, string>();
async function demoCa(dataDir: string): Promise<string | undefined> {
  const known = demoCas.get(dataDir);
  if (known !== undefined) return known;
  const ca = await readDemoCa(dataDir).catch(() => undefined);
  if (ca !== undefined) demoCas.set(dataDir, ca);
  return ca;
}

const caHashes = new Map<string, string>();
function caHash(ca: string): string {
  let hash = caHashes.get(ca);
  if (hash === undefined) {
    hash = createHash("sha256").update(ca).digest("hex");
    if (caHashes.size > 16) caHashes.clear();
    caHashes.set(ca, hash);
  }
  return hash;
}

function cacheKey(target: MailboxTransportTarget, endpoint: SmtpEndpoint): string {
  const ca = endpoint.ca ? caHash(endpoint.ca) : "system";
  return [
    target.mailboxId,
    target.address,
    target.provider,
    target.generation,
    endpoint.host,
    endpoint.port,
    endpoint.secure,
    endpoint.requireTLS,
    ca,
  ].join("|");
}

function smtpOptions(
  target: MailboxTransportTarget,
  endpoint: SmtpEndpoint,
  entry: Pick<Entry, "mailboxId" | "lastToken"> & { isAdminRetry?: boolean },
): SMTPTransportOptions {
  return {
    host: endpoint.host,
    port: endpoint.port,
    // Gmail 465: TLS from the first byte. Microsoft 587: STARTTLS, and refuse to go on without it.
    secure: endpoint.secure,
    requireTLS: endpoint.requireTLS || !endpoint.secure,
    ignoreTLS: false,
    opportunisticTLS: false,
    tls: {
      minVersion: "TLSv1.2",
      rejectUnauthorized: true,
      servername: endpoint.host,
      ...(endpoint.ca ? { ca: endpoint.ca } : {}),
    },
    auth: {
      type: "OAuth2",
      user: target.address,
      // Inside `auth`: at the top level nodemailer silently ignores it.
      provisionCallback: provisionFrom(entry),
    },
    connectionTimeout: 15_000,
    greetingTimeout: 15_000,
    socketTimeout: 60_000,
    // Messages are built from validated fields only; nothing may make nodemailer read a file or URL.
    disableFileAccess: true,
    disableUrlAccess: true,
    logger: false,
    debug: false,
  };
}

/**
 * nodemailer calls this on each new connection (renew=false) and once after a 334 challenge
 * (renew=true). `expires` is always passed: without it nodemailer keeps a token forever.
 */
function provisionFrom(entry: Pick<Entry, "mailboxId" | "lastToken"> & { isAdminRetry?: boolean }) {
  return function provision(
    this: unknown,
    _user: string,
    renew: boolean,
    callback: (error: Error | null, accessToken?: string, expires?: number) => void,
  ): void {
    // nodemailer calls this as a method of its per-connection XOAuth2 object, whose
    // accessToken is exactly the token the server refused.
    const held = (this as { accessToken?: unknown } | undefined)?.accessToken;
    const rejectedToken = typeof held === "string" ? held : (entry.lastToken ?? undefined);
    const options = {
      ...(renew ? { forceRefresh: true, ...(rejectedToken ? { rejectedToken } : {}) } : {}),
      ...(entry.isAdminRetry ? { isAdminRetry: true } : {}),
    };
    getAccessToken(entry.mailboxId, options).then(
      (token) => {
        entry.lastToken = token.accessToken;
        const expires = Math.max(
          Date.now() + 1_000,
          token.expiresAt.getTime() - TOKEN_EXPIRY_MARGIN_MS,
        );
        callback(null, token.accessToken, expires);
      },
      (error: unknown) => callback(error instanceof Error ? error : new Error(String(error))),
    );
  };
}

function providerFor(target: MailboxTransportTarget): MailProvider {
  const provider = getMailProvider(target.provider);
  if (!provider) throw new ProviderNotConfiguredError(target.provider);
  return provider;
}

/** The mailbox's connections, created on first use and replaced when its key changes. */
export async function getMailboxTransport(
  target: MailboxTransportTarget,
): Promise<MailboxTransport> {
  return (await entryFor(target)).connections;
}

async function entryFor(target: MailboxTransportTarget): Promise<Entry> {
  const provider = providerFor(target);
  const endpoint = await endpointFor(provider);
  const key = cacheKey(target, endpoint);
  const existing = state.entries.get(target.mailboxId);
  if (existing?.key === key) {
    existing.lastUsedAt = Date.now();
    return existing;
  }
  // Idle connections of the old grant close now, busy ones after their message; their leases
  // still count until then, so the cap holds across the change.
  if (existing) void existing.connections.closeAll();

  const entry: Entry = {
    key,
    mailboxId: target.mailboxId,
    lastUsedAt: Date.now(),
    lastToken: existing?.lastToken ?? null,
    connections: undefined as unknown as MailboxConnections,
  };
  entry.connections = new MailboxConnections(target.mailboxId, endpoint.maxConnections, () => {
    const transporter = nodemailer.createTransport({
      ...smtpOptions(target, endpoint, entry),
      // One connection per lease, kept open across messages; the lease decides when it closes.
      pool: true,
      maxConnections: 1,
      maxMessages: Number.POSITIVE_INFINITY,
      idleTimeout: 0,
      // nodemailer would send a message again by itself when its connection closes mid-send,
      // even after the last byte of DATA (a duplicate): the caller decides (lib/mail/delivery.ts).
      maxRequeues: 0,
    } as SMTPPoolOptions);
    transporter.use("stream", trackBodyProgress);
    // Pool-level errors also reach the sendMail callers; this only keeps them from crashing the process.
    transporter.on("error", () => {});
    return transporter;
  });
  state.entries.set(target.mailboxId, entry);
  startSweeper();
  return entry;
}

/**
 * "Test connection": TLS, AUTH XOAUTH2 and QUIT on a one-off, unpooled connection that holds
 * one of the mailbox's leases while it lives.
 */
export async function withProbeTransport<T>(
  target: MailboxTransportTarget,
  opts: { isAdminRetry?: boolean },
  fn: (transporter: Transporter) => Promise<T>,
): Promise<T> {
  const entry = await entryFor(target);
  const endpoint = await endpointFor(providerFor(target));
  const probeEntry = { mailboxId: target.mailboxId, lastToken: null, ...opts };
  return entry.connections.withLease(Date.now() + PROBE_LEASE_WAIT_MS, async () => {
    const probe = nodemailer.createTransport(smtpOptions(target, endpoint, probeEntry));
    try {
      return await fn(probe);
    } finally {
      probe.close();
    }
  });
}

/** The token nodemailer was last given for this mailbox, to name as rejected on a refresh. */
export function lastTokenFor(mailboxId: string): string | undefined {
  return state.entries.get(mailboxId)?.lastToken ?? undefined;
}

/** Revoke, reconnect, pause: drop the mailbox's connections now (busy ones after their message). */
export function closeMailboxTransport(mailboxId: string): Promise<void> {
  const entry = state.entries.get(mailboxId);
  if (!entry) return Promise.resolve();
  state.entries.delete(mailboxId);
  return entry.connections.closeAll();
}

/** Shutdown and tests: every connection closed and every lease of this process given back. */
export async function closeAllMailboxTransports(): Promise<void> {
  const entries = [...state.entries.values()];
  state.entries.clear();
  stopSweeper();
  await Promise.all(entries.map((entry) => entry.connections.closeAll()));
  await Promise.all(entries.map((entry) => entry.connections.drained()));
  await releaseAllSlots();
}
