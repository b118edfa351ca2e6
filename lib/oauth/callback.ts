import "server-only";
import { randomUUID } from "node:crypto";
import * as oidc from "openid-client";
import { type Database, getDb, type Tx } from "@/db";
import {
  consumeOAuthTransaction,
  findMailboxByAddress,
  findOAuthTransactionByState,
  insertMailbox,
  updateMailbox,
} from "@/db/queries/mailboxes";
import type { OAuthTransaction } from "@/db/schema";
import type { Actor } from "@/lib/audit/events";
import { writeAuditEvent } from "@/lib/audit/write";
import { enforceRateLimit, RateLimitedError } from "@/lib/ratelimit/runtime";
import { clientConfiguration } from "./client";
import type { RequestMeta } from "./connect";
import { type MailboxNotification, notifyMailboxProblem } from "./notify";
import {
  getMailProvider,
  isProviderIssuer,
  type MailProvider,
  missingMailScopes,
} from "./providers";
import { currentKeyId, openCodeVerifier, sealMailboxToken } from "./sealed";

export type RefusalReason =
  | "replayed"
  | "unknown_state"
  | "expired"
  | "other_user"
  | "wrong_issuer"
  | "wrong_provider"
  | "rate_limited";

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
  | { kind: "refused"; reason: RefusalReason; message: string }
  | { kind: "failed"; message: string };

export type CompleteConnectInput = {
  providerId: string;
  /** The full callback request URL, query included. */
  callbackUrl: URL;
  /** The signed-in person, or null. */
  userId: string | null;
  request: RequestMeta;
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
};

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
    ip: ctx.input.request.ip,
    userAgent: ctx.input.request.userAgent,
    metadata: { provider: ctx.input.providerId, ...audit.metadata },
  });
}

async function refuse(ctx: Context, reason: RefusalReason, orgId: string | null) {
  const outcome = reason === "rate_limited" || reason === "other_user" ? "denied" : "failure";
  await auditCallback(ctx.db, ctx, { orgId, outcome, metadata: { result: "refused", reason } });
  return { kind: "refused", reason, message: REFUSAL_MESSAGES[reason] } as const;
}

async function fail(ctx: Context, orgId: string | null, code: string, message: string) {
  await auditCallback(ctx.db, ctx, {
    orgId,
    outcome: "failure",
    metadata: { result: "failed", code },
  });
  return { kind: "failed", message } as const;
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
    throw error;
  }

  const state = params.get("state");
  if (!state) return refuse(ctx, "unknown_state", null);
  const now = new Date();
  const transaction = input.userId
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

  return exchangeAndStore(ctx, provider, transaction, iss);
}

type Grant = {
  address: string;
  tenant: string | null;
  scopes: string[];
  accessToken: string;
  expiresAt: Date;
  refreshToken: string | null;
};

async function exchangeCode(
  provider: MailProvider,
  transaction: OAuthTransaction,
  callbackUrl: URL,
  iss: string | null,
): Promise<Grant | { error: string }> {
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

  const claims = tokens.claims();
  const email =
    typeof claims?.email === "string"
      ? claims.email
      : provider.id === "microsoft" && typeof claims?.preferred_username === "string"
        ? claims.preferred_username
        : null;
  if (!email?.includes("@")) return { error: "no_email_claim" };
  if (provider.id !== "microsoft" && claims?.email_verified === false) {
    return { error: "email_not_verified" };
  }
  const requested = transaction.requestedScopes.split(" ");
  return {
    address: email.toLowerCase(),
    tenant: typeof claims?.tid === "string" ? claims.tid : null,
    // RFC 6749 §5.1: no `scope` in the answer means the scopes requested were granted.
    scopes: tokens.scope ? tokens.scope.split(" ").filter(Boolean) : requested,
    accessToken: tokens.access_token,
    expiresAt: new Date(Date.now() + (tokens.expires_in ?? 3600) * 1000),
    refreshToken: tokens.refresh_token ?? null,
  };
}

const EXCHANGE_MESSAGES: Record<string, string> = {
  no_email_claim: "The provider did not tell us the mailbox's address. Try again.",
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
    return fail(
      ctx,
      orgId,
      grant.error,
      EXCHANGE_MESSAGES[grant.error] ??
        `${provider.label} did not complete the connection (${grant.error}). Try again.`,
    );
  }

  const missing = missingMailScopes(provider, grant.scopes);
  if (missing.length > 0) return missingScope(ctx, orgId, missing, grant.scopes);

  const stored = await ctx.db.transaction((tx) =>
    storeMailbox(tx, ctx, provider, transaction, grant),
  );
  if (stored.kind === "missing_scope")
    return missingScope(ctx, orgId, stored.missing, grant.scopes);
  await stored.notification?.deliver();
  return stored.result;
}

async function missingScope(ctx: Context, orgId: string, missing: string[], granted: string[]) {
  await auditCallback(ctx.db, ctx, {
    orgId,
    outcome: "failure",
    metadata: { result: "missing_scope", missing, granted },
  });
  return { kind: "missing_scope", missing, granted } as const;
}

type Stored =
  | { kind: "stored"; result: CallbackResult; notification: MailboxNotification | null }
  | { kind: "missing_scope"; missing: string[] };

async function storeMailbox(
  tx: Tx,
  ctx: Context,
  provider: MailProvider,
  transaction: OAuthTransaction,
  grant: Grant,
): Promise<Stored> {
  const orgId = transaction.orgId;
  const existing = await findMailboxByAddress({
    db: tx,
    orgId,
    provider: provider.id,
    address: grant.address,
    forUpdate: true,
  });
  // Google sends a refresh token only on the first consent: keep the one we hold. Without
  // either, the mailbox would stop working within the hour; say what is missing instead.
  if (!grant.refreshToken && !existing?.hasRefreshToken) {
    const offline = provider.scopesToRequest().includes("offline_access");
    return { kind: "missing_scope", missing: [offline ? "offline_access" : "refresh_token"] };
  }

  const mailboxId = existing?.id ?? randomUUID();
  const fields = {
    connectedBy: transaction.userId,
    tenant: grant.tenant,
    // A paused mailbox was paused by an admin on purpose; a new grant does not lift that.
    status: existing?.status === "paused" ? ("paused" as const) : ("connected" as const),
    grantedScopes: grant.scopes,
    accessTokenEnc: sealMailboxToken(mailboxId, "access_token", grant.accessToken),
    accessTokenExpiresAt: grant.expiresAt,
    ...(grant.refreshToken
      ? { refreshTokenEnc: sealMailboxToken(mailboxId, "refresh_token", grant.refreshToken) }
      : {}),
    keyId: currentKeyId(),
    lastRefreshAt: new Date(),
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
      values: { id: mailboxId, orgId, provider: provider.id, address: grant.address, ...fields },
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
  };
  const common = {
    orgId,
    actor: ctx.actor,
    target,
    outcome: "success" as const,
    ip: ctx.input.request.ip,
    userAgent: ctx.input.request.userAgent,
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
