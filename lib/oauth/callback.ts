import "server-only";
import { randomUUID } from "node:crypto";
import * as oidc from "openid-client";
import { type Database, getDb, type Tx } from "@/db";
import {
  consumeOAuthTransaction,
  findMailboxByAddress,
  findMailboxBySubject,
  findOAuthTransactionByState,
  getMailboxForOrg,
  insertMailbox,
  isSubjectConnectedAnywhere,
  updateMailbox,
} from "@/db/queries/mailboxes";
import { lockMembershipRole } from "@/db/queries/organizations";
import type { OAuthTransaction } from "@/db/schema";
import type { Actor, RequestInfo } from "@/lib/audit/events";
import { writeAuditEvent } from "@/lib/audit/write";
import { hasPermission } from "@/lib/auth/roles";
import { assertConnectionsAllowed, ConnectionsBlockedError } from "@/lib/incidents/switches";
import {
  enforceRateLimit,
  LimitStoreUnavailableError,
  RateLimitedError,
} from "@/lib/ratelimit/runtime";
import { clientConfiguration } from "./client";
import { sealGrant } from "./grant-columns";
import { type MailboxNotification, notifyMailboxProblem } from "./notify";
import {
  getMailProvider,
  isProviderId,
  isProviderIssuer,
  type MailProvider,
  missingMailScopes,
  subjectFromClaims,
} from "./providers";
import { openCodeVerifier } from "./sealed";
import { revokeToken } from "./token-endpoint";

export type RefusalReason =
  | "replayed"
  | "unknown_state"
  | "expired"
  | "other_user"
  | "wrong_issuer"
  | "wrong_provider"
  | "rate_limited"
  | "unavailable"
  | "not_permitted"
  | "other_account"
  | "address_in_use"
  | "connections_blocked";

export type CallbackResult =
  | {
      kind: "connected";
      mailboxId: string;
      address: string;
      scopes: string[];
      reconnected: boolean;
    }
  | { kind: "missing_scope"; missing: string[]; granted: string[] }
  | { kind: "denied"; message: string }
  | { kind: "refused"; reason: RefusalReason; message: string; mailboxId?: string }
  | { kind: "failed"; message: string };

export type CompleteConnectInput = {
  providerId: string;
  /** The full callback request URL, query included. */
  callbackUrl: URL;
  /** The signed-in person, or null. */
  userId: string | null;
  request: RequestInfo;
};

const REFUSAL_MESSAGES: Record<RefusalReason, string> = {
  replayed: "This sign-in response was already used. Start connecting the mailbox again.",
  unknown_state: "This sign-in response does not belong to a connection started here. Start again.",
  expired: "The connection attempt took longer than 10 minutes and expired. Start again.",
  other_user:
    "This connection was started by someone else, or you are signed in as another person. " +
    "Start again while signed in.",
  wrong_issuer:
    "The response did not come from the provider the connection was started with, so it was " +
    "refused. Start again.",
  wrong_provider:
    "The response came back for a different provider than the one started. Start again.",
  rate_limited: "Too many connection attempts. Wait a minute and try again.",
  unavailable:
    "Connecting is temporarily unavailable (the rate-limit store does not answer). Nothing was " +
    "stored; try again in a minute.",
  not_permitted:
    "Your role in this organisation no longer allows connecting mailboxes (it changed, or you " +
    "left the organisation, while the provider's page was open). Nothing was stored.",
  other_account:
    "This reconnect was for another account than the one chosen on the provider's page. " +
    "Nothing was changed; reconnect again and choose the mailbox's own account.",
  address_in_use:
    "The provider gave this account an address that is already connected here for a different " +
    "account. Nothing was changed; revoke the other mailbox first if the address really moved.",
  connections_blocked:
    "Connecting mailboxes is blocked by an incident switch. Nothing was connected.",
};

/** Refusals of a person or of an account (not a broken or forged response). */
const DENIED_REASONS: ReadonlySet<RefusalReason> = new Set([
  "rate_limited",
  "other_user",
  "not_permitted",
  "other_account",
  "address_in_use",
  "connections_blocked",
]);

type Context = { db: Database; input: CompleteConnectInput; actor: Actor };

type Audit = {
  orgId: string | null;
  outcome: "success" | "failure" | "denied";
  metadata: Record<string, unknown>;
};

async function auditCallback(db: Database | Tx, ctx: Context, audit: Audit) {
  await writeAuditEvent(db, {
    orgId: audit.orgId,
    actor: ctx.actor,
    action: "oauth.callback",
    outcome: audit.outcome,
    request: ctx.input.request,
    metadata: { provider: ctx.input.providerId, ...audit.metadata },
  });
}

async function refuse(
  ctx: Context,
  reason: RefusalReason,
  orgId: string | null,
  details: { mailboxId?: string; metadata?: Record<string, unknown> } = {},
) {
  const outcome = DENIED_REASONS.has(reason) ? "denied" : "failure";
  await auditCallback(ctx.db, ctx, {
    orgId,
    outcome,
    metadata: { result: "refused", reason, ...details.metadata },
  });
  return {
    kind: "refused",
    reason,
    message: REFUSAL_MESSAGES[reason],
    ...(details.mailboxId ? { mailboxId: details.mailboxId } : {}),
  } as const;
}

async function fail(
  ctx: Context,
  orgId: string | null,
  code: string,
  message: string,
  metadata: Record<string, unknown> = {},
) {
  await auditCallback(ctx.db, ctx, {
    orgId,
    outcome: "failure",
    metadata: { result: "failed", code, ...metadata },
  });
  return { kind: "failed", message } as const;
}

/** What became of a grant the provider issued that Mailwarden does not keep. */
type Withdrawal = "revoked" | "failed" | "not_supported" | "kept_in_use";

/**
 * Revokes tokens the provider just issued but that are not stored, so none is left alive. The
 * refresh token stands for the whole grant. Microsoft has no revocation endpoint: the consent
 * stays there until the account removes it. Where revoking ends every grant of the account
 * (Google), a grant that a connected mailbox relies on is left alone.
 */
async function withdrawGrant(
  db: Database,
  provider: MailProvider,
  tokens: IssuedTokens,
  subject: string | null,
): Promise<Withdrawal> {
  if (!provider.revocationEndpoint) return "not_supported";
  if (
    provider.revocationEndsAccountGrants &&
    (subject === null || (await isSubjectConnectedAnywhere({ db, provider: provider.id, subject })))
  ) {
    return "kept_in_use";
  }
  const answer = tokens.refreshToken
    ? await revokeToken(provider, tokens.refreshToken, "refresh_token")
    : await revokeToken(provider, tokens.accessToken, "access_token");
  return answer.ok ? "revoked" : "failed";
}

/** The person must still be allowed to connect mailboxes for the transaction's organisation. */
async function mayManageMailboxes(db: Database | Tx, transaction: OAuthTransaction) {
  const role = await lockMembershipRole({
    db,
    orgId: transaction.orgId,
    userId: transaction.userId,
  });
  return role !== null && hasPermission(role, "manageMailboxes");
}

/** Why a state could not be consumed, read after the fact; the transaction itself is gone. */
async function explainRefusal(ctx: Context, state: string, now: Date) {
  const known = await findOAuthTransactionByState({ db: ctx.db, state });
  if (!known) return refuse(ctx, "unknown_state", null);
  if (known.usedAt) return refuse(ctx, "replayed", known.orgId);
  if (known.userId !== ctx.input.userId) return refuse(ctx, "other_user", known.orgId);
  if (known.provider !== ctx.input.providerId) return refuse(ctx, "wrong_provider", known.orgId);
  if (known.expiresAt <= now) return refuse(ctx, "expired", known.orgId);
  return refuse(ctx, "unknown_state", known.orgId);
}

/**
 * Finishes a connection: checks the one-time transaction and the response's issuer, exchanges
 * the code (PKCE, nonce), checks the granted scopes, then stores the mailbox with its tokens.
 */
export async function completeConnect(input: CompleteConnectInput): Promise<CallbackResult> {
  const db = await getDb();
  const actor: Actor = input.userId
    ? { type: "user", id: input.userId }
    : { type: "system", label: "anonymous callback" };
  const ctx: Context = { db, input, actor };
  const params = input.callbackUrl.searchParams;

  try {
    const key = input.userId ? `user:${input.userId}` : `ip:${input.request.ip ?? "unknown"}`;
    await enforceRateLimit("oauthCallback", [key]);
  } catch (error) {
    if (error instanceof RateLimitedError) return refuse(ctx, "rate_limited", null);
    if (error instanceof LimitStoreUnavailableError) return refuse(ctx, "unavailable", null);
    throw error;
  }

  const state = params.get("state");
  if (!state) return refuse(ctx, "unknown_state", null);
  const now = new Date();
  // An unknown provider in the path matches no transaction: explainRefusal says why.
  const transaction =
    input.userId && isProviderId(input.providerId)
      ? await consumeOAuthTransaction({
          db,
          state,
          userId: input.userId,
          provider: input.providerId,
          now,
        })
      : null;
  if (!transaction) return explainRefusal(ctx, state, now);
  const orgId = transaction.orgId;

  const provider = getMailProvider(transaction.provider);
  if (!provider)
    return fail(ctx, orgId, "provider_not_configured", "This provider is not configured.");

  const iss = params.get("iss");
  if (
    (iss === null && provider.requiresIssInResponse) ||
    (iss !== null && !isProviderIssuer(provider, iss))
  ) {
    return refuse(ctx, "wrong_issuer", orgId);
  }

  const error = params.get("error");
  if (error === "access_denied") {
    await auditCallback(db, ctx, {
      orgId,
      outcome: "denied",
      metadata: { result: "denied", error },
    });
    return {
      kind: "denied",
      message: "The permission request was declined, so the mailbox was not connected.",
    };
  }
  if (error) {
    return fail(
      ctx,
      orgId,
      error.slice(0, 64),
      `${provider.label} answered with an error (${error.slice(0, 64)}). The mailbox was not connected; try again.`,
    );
  }

  // Cheap refusals before the code is redeemed: no token is issued for a refused connection.
  try {
    await assertConnectionsAllowed({
      db,
      orgId,
      audit: {
        action: "oauth.callback",
        actor,
        request: input.request,
        metadata: { provider: provider.id },
      },
    });
  } catch (error) {
    if (!(error instanceof ConnectionsBlockedError)) throw error;
    return {
      kind: "refused",
      reason: "connections_blocked",
      message: error.message,
      ...(transaction.mailboxId ? { mailboxId: transaction.mailboxId } : {}),
    };
  }
  if (!(await mayManageMailboxes(db, transaction))) {
    return refuse(ctx, "not_permitted", orgId, { metadata: { codeRedeemed: false } });
  }

  return exchangeAndStore(ctx, provider, transaction, iss);
}

type IssuedTokens = { accessToken: string; refreshToken: string | null };

type Grant = IssuedTokens & {
  subject: string;
  address: string;
  tenant: string | null;
  scopes: string[];
  expiresAt: Date;
};

async function exchangeCode(
  provider: MailProvider,
  transaction: OAuthTransaction,
  callbackUrl: URL,
  iss: string | null,
): Promise<Grant | { error: string; issued?: IssuedTokens }> {
  // The redirect URI sent to the token endpoint is the one recorded at the start, never one
  // rebuilt from the incoming request (proxies and hosts rewrite those).
  const currentUrl = new URL(transaction.redirectUri);
  for (const [name, value] of callbackUrl.searchParams) currentUrl.searchParams.append(name, value);
  // Checked above against the tenant-templated issuer, which openid-client would compare verbatim.
  if (iss !== null && iss !== provider.issuer) currentUrl.searchParams.delete("iss");

  let tokens: Awaited<ReturnType<typeof oidc.authorizationCodeGrant>>;
  try {
    tokens = await oidc.authorizationCodeGrant(await clientConfiguration(provider), currentUrl, {
      pkceCodeVerifier: openCodeVerifier(transaction.id, transaction.codeVerifierEnc),
      expectedState: transaction.state,
      expectedNonce: transaction.nonce,
      idTokenExpected: true,
    });
  } catch (error) {
    if (error instanceof oidc.ResponseBodyError) return { error: error.error.slice(0, 64) };
    const code = (error as { code?: unknown }).code;
    return { error: typeof code === "string" ? code : "exchange_failed" };
  }

  const issued = { accessToken: tokens.access_token, refreshToken: tokens.refresh_token ?? null };
  const claims = tokens.claims();
  const subject = subjectFromClaims(provider, claims);
  if (!subject) return { error: "no_subject_claim", issued };
  const email =
    typeof claims?.email === "string"
      ? claims.email
      : provider.id === "microsoft" && typeof claims?.preferred_username === "string"
        ? claims.preferred_username
        : null;
  if (!email?.includes("@")) return { error: "no_email_claim", issued };
  if (provider.id !== "microsoft" && claims?.email_verified === false) {
    return { error: "email_not_verified", issued };
  }
  const requested = transaction.requestedScopes.split(" ");
  return {
    ...issued,
    subject,
    address: email.toLowerCase(),
    tenant: typeof claims?.tid === "string" ? claims.tid : null,
    // RFC 6749 §5.1: no `scope` in the answer means the scopes requested were granted.
    scopes: tokens.scope ? tokens.scope.split(" ").filter(Boolean) : requested,
    expiresAt: new Date(Date.now() + (tokens.expires_in ?? 3600) * 1000),
  };
}

const EXCHANGE_MESSAGES: Record<string, string> = {
  no_email_claim: "The provider did not tell us the mailbox's address. Try again.",
  no_subject_claim: "The provider did not tell us which account this is. Try again.",
  email_not_verified: "The provider says this address is not verified, so it cannot be connected.",
};

async function exchangeAndStore(
  ctx: Context,
  provider: MailProvider,
  transaction: OAuthTransaction,
  iss: string | null,
): Promise<CallbackResult> {
  const orgId = transaction.orgId;
  const grant = await exchangeCode(provider, transaction, ctx.input.callbackUrl, iss);
  if ("error" in grant) {
    const grantWithdrawn = grant.issued
      ? await withdrawGrant(ctx.db, provider, grant.issued, null)
      : null;
    return fail(
      ctx,
      orgId,
      grant.error,
      EXCHANGE_MESSAGES[grant.error] ??
        `${provider.label} did not complete the connection (${grant.error}). Try again.`,
      grantWithdrawn ? { grantWithdrawn } : {},
    );
  }

  // Without the mail scope the grant is useless to us: withdraw it rather than leave it alive.
  const missing = missingMailScopes(provider, grant.scopes);
  if (missing.length > 0) {
    const grantWithdrawn = await withdrawGrant(ctx.db, provider, grant, grant.subject);
    return missingScope(ctx, orgId, missing, grant.scopes, grantWithdrawn);
  }

  const stored = await ctx.db.transaction((tx) =>
    storeMailbox(tx, ctx, provider, transaction, grant),
  );
  if (stored.kind === "missing_scope") {
    const grantWithdrawn = await withdrawGrant(ctx.db, provider, grant, grant.subject);
    return missingScope(ctx, orgId, stored.missing, grant.scopes, grantWithdrawn);
  }
  if (stored.kind === "refused") {
    const grantWithdrawn = await withdrawGrant(ctx.db, provider, grant, grant.subject);
    return refuse(ctx, stored.reason, orgId, {
      ...(stored.mailboxId ? { mailboxId: stored.mailboxId } : {}),
      metadata: { ...stored.metadata, codeRedeemed: true, grantWithdrawn },
    });
  }
  await stored.notification?.deliver();
  return stored.result;
}

async function missingScope(
  ctx: Context,
  orgId: string,
  missing: string[],
  granted: string[],
  grantWithdrawn: Withdrawal,
) {
  await auditCallback(ctx.db, ctx, {
    orgId,
    outcome: "failure",
    metadata: { result: "missing_scope", missing, granted, grantWithdrawn },
  });
  return { kind: "missing_scope", missing, granted } as const;
}

type Stored =
  | { kind: "stored"; result: CallbackResult; notification: MailboxNotification | null }
  | { kind: "missing_scope"; missing: string[] }
  | {
      kind: "refused";
      reason: "not_permitted" | "other_account" | "address_in_use";
      mailboxId?: string;
      metadata?: Record<string, unknown>;
    };

type Existing = Awaited<ReturnType<typeof getMailboxForOrg>>;

/**
 * The row this grant renews, or null for a new mailbox. A reconnect may only renew the mailbox
 * it was started for; otherwise the account's stable subject finds its row. A row from before
 * subjects were recorded is adopted once, by address.
 */
async function mailboxToRenew(
  tx: Tx,
  provider: MailProvider,
  transaction: OAuthTransaction,
  grant: Grant,
): Promise<{ existing: Existing } | Extract<Stored, { kind: "refused" }>> {
  const orgId = transaction.orgId;
  const key = { db: tx, orgId, provider: provider.id, forUpdate: true };
  const bySubject = await findMailboxBySubject({ ...key, subject: grant.subject });
  let existing: Existing;
  if (transaction.mailboxId) {
    const target = await getMailboxForOrg({ ...key, mailboxId: transaction.mailboxId });
    const sameAccount =
      target !== null &&
      target.provider === provider.id &&
      (target.providerSubject === null
        ? target.address === grant.address && bySubject === null
        : target.providerSubject === grant.subject);
    if (!target || !sameAccount) {
      return {
        kind: "refused",
        reason: "other_account",
        mailboxId: transaction.mailboxId,
        metadata: { mailboxId: transaction.mailboxId, returnedAddress: grant.address },
      };
    }
    existing = target;
  } else {
    existing = bySubject;
    if (!existing) {
      const byAddress = await findMailboxByAddress({ ...key, address: grant.address });
      if (byAddress && byAddress.providerSubject !== null) {
        return {
          kind: "refused",
          reason: "address_in_use",
          metadata: { mailboxId: byAddress.id, returnedAddress: grant.address },
        };
      }
      existing = byAddress;
    }
  }
  // The provider may report a new address for the same account; another row may hold it.
  if (existing && existing.address !== grant.address) {
    const holder = await findMailboxByAddress({ ...key, address: grant.address });
    if (holder && holder.id !== existing.id) {
      return {
        kind: "refused",
        reason: "address_in_use",
        metadata: { mailboxId: holder.id, returnedAddress: grant.address },
      };
    }
  }
  return { existing };
}

async function storeMailbox(
  tx: Tx,
  ctx: Context,
  provider: MailProvider,
  transaction: OAuthTransaction,
  grant: Grant,
): Promise<Stored> {
  const orgId = transaction.orgId;
  // Checked again under a lock: the role may have changed while the code was being redeemed.
  if (!(await mayManageMailboxes(tx, transaction)))
    return { kind: "refused", reason: "not_permitted" };
  const found = await mailboxToRenew(tx, provider, transaction, grant);
  if ("kind" in found) return found;
  const { existing } = found;
  // Google sends a refresh token only on the first consent: keep the one we hold. Without
  // either, the mailbox would stop working within the hour; say what is missing instead.
  if (!grant.refreshToken && !existing?.hasRefreshToken) {
    const offline = provider.scopesToRequest().includes("offline_access");
    return { kind: "missing_scope", missing: [offline ? "offline_access" : "refresh_token"] };
  }

  const mailboxId = existing?.id ?? randomUUID();
  const fields = {
    address: grant.address,
    providerSubject: grant.subject,
    connectedBy: transaction.userId,
    tenant: grant.tenant,
    // A paused mailbox was paused by an admin on purpose; a new grant does not lift that.
    status: existing?.status === "paused" ? ("paused" as const) : ("connected" as const),
    ...sealGrant(mailboxId, grant),
    lastErrorCode: null,
    lastErrorCause: null,
    failureCount: 0,
    retryAfter: null,
  };
  if (existing) {
    await updateMailbox({ db: tx, mailboxId, set: fields });
  } else {
    const inserted = await insertMailbox({
      db: tx,
      values: { id: mailboxId, orgId, provider: provider.id, ...fields },
    });
    // Someone connected the same address a moment ago: retry as a reconnect of that row.
    if (!inserted) return storeMailbox(tx, ctx, provider, transaction, grant);
  }

  const target = { type: "mailbox", id: mailboxId };
  const metadata = {
    provider: provider.id,
    address: grant.address,
    scopes: grant.scopes,
    reconnected: Boolean(existing),
    previousStatus: existing?.status ?? null,
    ...(existing && existing.address !== grant.address
      ? { previousAddress: existing.address }
      : {}),
  };
  const common = {
    orgId,
    actor: ctx.actor,
    target,
    outcome: "success" as const,
    request: ctx.input.request,
  };
  await writeAuditEvent(tx, {
    ...common,
    action: "oauth.callback",
    metadata: { ...metadata, result: "connected" },
  });
  await writeAuditEvent(tx, { ...common, action: "mailbox.connected", metadata });

  const recovered =
    existing?.status === "needs_reconnect" || existing?.status === "admin_action_required";
  const notification = recovered
    ? await notifyMailboxProblem(tx, {
        kind: "mailbox_recovered",
        orgId,
        mailboxId,
        address: grant.address,
        providerLabel: provider.label,
        connectedBy: transaction.userId,
      })
    : null;
  return {
    kind: "stored",
    notification,
    result: {
      kind: "connected",
      mailboxId,
      address: grant.address,
      scopes: grant.scopes,
      reconnected: Boolean(existing),
    },
  };
}
