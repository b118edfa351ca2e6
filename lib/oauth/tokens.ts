import "server-only";
import { getDb, type Tx } from "@/db";
import {
  getMailboxWithTokens,
  lockMailboxWithTokens,
  type MailboxTokenRow,
  touchMailboxLastUsed,
  updateMailbox,
} from "@/db/queries/mailboxes";
import type { ProviderId } from "@/db/schema";
import { type Actor, withoutAddresses } from "@/lib/audit/events";
import { writeAuditEvent } from "@/lib/audit/write";
import { rateLimits } from "@/lib/ratelimit/runtime";
import {
  MailboxNeedsReconnectError,
  MailboxNotFoundError,
  MailboxUnavailableError,
  ProviderNotConfiguredError,
  TokenRefreshTransientError,
} from "./errors";
import { CLEARED_TOKENS, sealGrant } from "./grant-columns";
import { type MailboxNotification, notifyMailboxProblem } from "./notify";
import {
  classifyTokenError,
  getMailProvider,
  type MailProvider,
  missingScopeFailure,
  scopesLostOnRefresh,
  type TokenErrorClassification,
} from "./providers";
import { openMailboxToken } from "./sealed";
import { type RefreshedTokens, refreshAccessToken } from "./token-endpoint";

export type AccessToken = {
  accessToken: string;
  expiresAt: Date;
  address: string;
  provider: ProviderId;
};

export type GetAccessTokenOptions = {
  /** The provider refused the token we gave (SMTP 535/334): get a new one. */
  forceRefresh?: boolean;
  /** The refused token: if the stored one differs, someone already refreshed it; use that. */
  rejectedToken?: string;
  /**
   * An administrator's "Retry now" on a mailbox waiting for them: its grant is still whole, so
   * a token may be used to test whether the provider lets it send again.
   */
  isAdminRetry?: boolean;
};

/** Refresh ahead of expiry, so a token never expires between here and the SMTP AUTH. */
export const REFRESH_AHEAD_MS = 2 * 60 * 1000;
const BACKOFF_BASE_MS = 30_000;
const BACKOFF_MAX_MS = 30 * 60 * 1000;

const SYSTEM: Actor = { type: "system", label: "token refresh" };

const NO_REFRESH_TOKEN: TokenErrorClassification = {
  kind: "permanent",
  code: "no_refresh_token",
  cause: "Mailwarden holds no refresh token for this mailbox any more. Reconnect the mailbox.",
};

// In-process single flight: concurrent callers for one mailbox share one refresh. The row lock
// below does the same across processes; this only spares the database the queue of waiters.
const holder = globalThis as typeof globalThis & {
  __mailwardenRefreshFlights?: Map<string, Promise<AccessToken>>;
};
holder.__mailwardenRefreshFlights ??= new Map();
const flights = holder.__mailwardenRefreshFlights;

export function backoffMs(failureCount: number): number {
  return Math.min(2 ** Math.max(0, failureCount - 1) * BACKOFF_BASE_MS, BACKOFF_MAX_MS);
}

type UsableRow = Pick<MailboxTokenRow, "id" | "status" | "lastErrorCause" | "lastErrorCode">;

export function assertUsable(row: UsableRow, opts: GetAccessTokenOptions = {}): void {
  if (row.status === "connected") return;
  if (row.status === "admin_action_required" && opts.isAdminRetry) return;
  const cause =
    row.lastErrorCause ??
    (row.status === "paused"
      ? "This mailbox is paused by an administrator."
      : row.status === "revoked"
        ? "This mailbox was disconnected. Connect it again to send from it."
        : "This mailbox cannot send until a person acts on it.");
  if (row.status === "needs_reconnect") {
    throw new MailboxNeedsReconnectError(row.id, cause, row.lastErrorCode ?? "needs_reconnect");
  }
  throw new MailboxUnavailableError(row.id, row.status, cause);
}

function storedToken(row: MailboxTokenRow): { token: string; expiresAt: Date } | null {
  if (!row.accessTokenEnc || !row.accessTokenExpiresAt) return null;
  return {
    token: openMailboxToken(row.id, "access_token", row.accessTokenEnc),
    expiresAt: row.accessTokenExpiresAt,
  };
}

function isFresh(expiresAt: Date): boolean {
  return expiresAt.getTime() - Date.now() > REFRESH_AHEAD_MS;
}

function result(row: MailboxTokenRow, token: string, expiresAt: Date): AccessToken {
  return {
    accessToken: token,
    expiresAt,
    address: row.address,
    provider: row.provider,
  };
}

/**
 * A usable access token for the mailbox: the stored one while it has more than two minutes
 * left, otherwise a new one (one refresh per mailbox at a time, across every process).
 * Throws MailboxUnavailableError (or its subclass MailboxNeedsReconnectError) when the mailbox
 * cannot send, and TokenRefreshTransientError while the provider is failing.
 */
export async function getAccessToken(
  mailboxId: string,
  opts: GetAccessTokenOptions = {},
): Promise<AccessToken> {
  const key = `${mailboxId}:${opts.forceRefresh ? "force" : "normal"}`;
  const inFlight = flights.get(key);
  if (inFlight) return inFlight;

  if (!opts.forceRefresh) {
    const row = await getMailboxWithTokens({ db: await getDb(), mailboxId });
    if (!row) throw new MailboxNotFoundError(mailboxId);
    assertUsable(row, opts);
    const stored = storedToken(row);
    if (stored && isFresh(stored.expiresAt)) return result(row, stored.token, stored.expiresAt);
  }

  const joined = flights.get(key);
  if (joined) return joined;
  const flight = refreshUnderLock(mailboxId, opts).finally(() => flights.delete(key));
  flights.set(key, flight);
  return flight;
}

type Outcome =
  | { kind: "token"; token: AccessToken }
  | { kind: "permanent"; failure: TokenErrorClassification; notification: MailboxNotification }
  | { kind: "transient"; failure: TokenErrorClassification; retryAt: Date };

async function refreshUnderLock(mailboxId: string, opts: GetAccessTokenOptions) {
  const db = await getDb();
  const outcome = await db.transaction(async (tx): Promise<Outcome> => {
    const row = await lockMailboxWithTokens({ db: tx, mailboxId });
    if (!row) throw new MailboxNotFoundError(mailboxId);
    assertUsable(row, opts);
    const provider = getMailProvider(row.provider);
    if (!provider) throw new ProviderNotConfiguredError(row.provider);

    // Re-check under the lock: another process (or an earlier flight here) may have refreshed.
    const stored = storedToken(row);
    const isReplacement =
      !opts.forceRefresh ||
      (opts.rejectedToken !== undefined && stored?.token !== opts.rejectedToken);
    if (stored && isFresh(stored.expiresAt) && isReplacement) {
      return { kind: "token", token: result(row, stored.token, stored.expiresAt) };
    }
    if (row.retryAfter && row.retryAfter > new Date()) {
      throw new TokenRefreshTransientError(
        mailboxId,
        row.lastErrorCode ?? "backoff",
        row.retryAfter,
      );
    }
    if (!row.refreshTokenEnc) return markNeedsReconnect(tx, row, provider, NO_REFRESH_TOKEN, null);

    const allowed = await rateLimits().get("tokenRefresh").limit(`mailbox:${mailboxId}`);
    if (!allowed.success) {
      const retryAt = new Date(Date.now() + allowed.retryAfterSeconds * 1000);
      throw new TokenRefreshTransientError(mailboxId, "rate_limited", retryAt);
    }
    const refreshToken = openMailboxToken(row.id, "refresh_token", row.refreshTokenEnc);
    const answer = await refreshAccessToken(provider, refreshToken);
    if (answer.ok) {
      // A token without the mail scope would only be refused by the SMTP server, opaquely.
      const missing = scopesLostOnRefresh(provider, answer.value);
      if (missing.length === 0) return saveRefreshed(tx, row, answer.value);
      const failure = missingScopeFailure(provider.label, missing);
      return markNeedsReconnect(tx, row, provider, failure, 200, {
        tokens: answer.value,
        missing,
      });
    }
    const failure = classifyTokenError(provider.id, answer);
    return failure.kind === "permanent"
      ? markNeedsReconnect(tx, row, provider, failure, answer.status)
      : recordTransient(tx, row, failure, answer.status);
  });

  if (outcome.kind === "token") return outcome.token;
  if (outcome.kind === "transient") {
    throw new TokenRefreshTransientError(mailboxId, outcome.failure.code, outcome.retryAt);
  }
  await outcome.notification.deliver();
  throw new MailboxNeedsReconnectError(mailboxId, outcome.failure.cause, outcome.failure.code);
}

/** Everything the provider returned is written before the new token leaves this function. */
async function saveRefreshed(
  tx: Tx,
  row: MailboxTokenRow,
  tokens: RefreshedTokens,
): Promise<Outcome> {
  await updateMailbox({
    db: tx,
    mailboxId: row.id,
    set: {
      ...sealGrant(row.id, tokens),
      lastErrorCode: null,
      lastErrorCause: null,
      failureCount: 0,
      retryAfter: null,
    },
  });
  await writeAuditEvent(tx, {
    orgId: row.orgId,
    actor: SYSTEM,
    action: "oauth.token_refreshed",
    target: { type: "mailbox", id: row.id },
    outcome: "success",
    metadata: {
      provider: row.provider,
      rotated: Boolean(tokens.refreshToken),
      scopes: tokens.scopes,
      expiresAt: tokens.expiresAt.toISOString(),
    },
  });
  return { kind: "token", token: result(row, tokens.accessToken, tokens.expiresAt) };
}

async function markNeedsReconnect(
  tx: Tx,
  row: MailboxTokenRow,
  provider: MailProvider,
  failure: TokenErrorClassification,
  httpStatus: number | null,
  narrowed?: { tokens: RefreshedTokens; missing: string[] },
): Promise<Outcome> {
  await updateMailbox({
    db: tx,
    mailboxId: row.id,
    set: {
      status: "needs_reconnect",
      // A refused grant is dead: keeping its refresh token would make the reconnect skip
      // prompt=consent, and Google would then send no new refresh token. A narrowed grant still
      // works: it is kept (rotated token and scopes), so a disconnect can revoke it, and at
      // Google the held refresh token covers what the reconnect's incremental consent adds.
      ...(narrowed ? sealGrant(row.id, narrowed.tokens) : CLEARED_TOKENS),
      lastErrorCode: failure.code,
      lastErrorCause: failure.cause,
      failureCount: row.failureCount + 1,
      retryAfter: null,
    },
  });
  const target = { type: "mailbox", id: row.id };
  await writeAuditEvent(tx, {
    orgId: row.orgId,
    actor: SYSTEM,
    action: "oauth.refresh_failed",
    target,
    outcome: "failure",
    metadata: {
      provider: row.provider,
      kind: "permanent",
      code: failure.code,
      httpStatus,
      ...(narrowed ? { missing: narrowed.missing, scopes: narrowed.tokens.scopes } : {}),
    },
  });
  await writeAuditEvent(tx, {
    orgId: row.orgId,
    actor: SYSTEM,
    action: "mailbox.needs_reconnect",
    target,
    outcome: "success",
    metadata: { provider: row.provider, code: failure.code, cause: failure.cause },
  });
  const notification = await notifyMailboxProblem(tx, {
    kind: "mailbox_needs_reconnect",
    orgId: row.orgId,
    mailboxId: row.id,
    address: row.address,
    providerLabel: provider.label,
    connectedBy: row.connectedBy,
    cause: failure.cause,
  });
  return { kind: "permanent", failure, notification };
}

async function recordTransient(
  tx: Tx,
  row: MailboxTokenRow,
  failure: TokenErrorClassification,
  httpStatus: number | null,
): Promise<Outcome> {
  const failureCount = row.failureCount + 1;
  const retryAt = new Date(Date.now() + backoffMs(failureCount));
  await updateMailbox({
    db: tx,
    mailboxId: row.id,
    set: {
      failureCount,
      retryAfter: retryAt,
      lastErrorCode: failure.code,
      lastErrorCause: failure.cause,
    },
  });
  await writeAuditEvent(tx, {
    orgId: row.orgId,
    actor: SYSTEM,
    action: "oauth.refresh_failed",
    target: { type: "mailbox", id: row.id },
    outcome: "failure",
    metadata: {
      provider: row.provider,
      kind: "transient",
      code: failure.code,
      httpStatus,
      retryAt: retryAt.toISOString(),
    },
  });
  return { kind: "transient", failure, retryAt };
}

/**
 * The provider accepted the token but refuses SMTP for a reason only an administrator can fix
 * (Microsoft 535 5.7.139: SMTP AUTH disabled). Reconnecting would not help, so it is not asked.
 */
export type SmtpMailboxProblem = {
  status: "needs_reconnect" | "admin_action_required";
  code: string;
  cause: string;
  smtpResponse?: string | null;
};

/**
 * The sending layer calls this when the SMTP server refuses a fresh token: the grant is dead
 * (needs_reconnect; tokens kept, the refresh layer wipes them when it fails itself) or an
 * administrator must enable SMTP AUTH (admin_action_required: no consent loop). Said once.
 */
export async function markMailboxUnusable(
  mailboxId: string,
  problem: SmtpMailboxProblem,
): Promise<void> {
  const db = await getDb();
  const notification = await db.transaction(async (tx) => {
    const row = await lockMailboxWithTokens({ db: tx, mailboxId });
    if (!row) throw new MailboxNotFoundError(mailboxId);
    // Already flagged, paused, revoked or waiting for a reconnect: nothing new to say.
    if (row.status !== "connected") return null;
    const { status, code, cause } = problem;
    // Chained metadata is out of erasure's reach: [address] (the cause names the mailbox's own).
    const [logCause, logReply] = [cause, problem.smtpResponse ?? null].map(withoutAddresses);
    await updateMailbox({
      db: tx,
      mailboxId,
      set: {
        status,
        lastErrorCode: code,
        lastErrorCause: cause,
        failureCount: row.failureCount + 1,
      },
    });
    await writeAuditEvent(tx, {
      orgId: row.orgId,
      actor: { type: "system", label: "mail sending" },
      action:
        status === "needs_reconnect" ? "mailbox.needs_reconnect" : "mailbox.admin_action_required",
      target: { type: "mailbox", id: mailboxId },
      outcome: "success",
      metadata: { provider: row.provider, code, cause: logCause, smtpResponse: logReply },
    });
    return notifyMailboxProblem(tx, {
      kind:
        status === "needs_reconnect" ? "mailbox_needs_reconnect" : "mailbox_admin_action_required",
      orgId: row.orgId,
      mailboxId,
      address: row.address,
      providerLabel: getMailProvider(row.provider)?.label ?? row.provider,
      connectedBy: row.connectedBy,
      cause,
    });
  });
  await notification?.deliver();
}

/** The sending layer calls this after a message went out (Google ends grants unused 6 months). */
export async function recordMailboxUse(mailboxId: string): Promise<void> {
  await touchMailboxLastUsed({ db: await getDb(), mailboxId });
}
