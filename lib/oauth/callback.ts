import "server-only";
import { getDb } from "@/db";
import { consumeOAuthTransaction, findOAuthTransactionByState } from "@/db/queries/mailboxes";
import type { OAuthTransaction } from "@/db/schema";
import type { Actor } from "@/lib/audit/events";
import { addressLimitKey } from "@/lib/auth/client-address";
import { assertConnectionsAllowed, ConnectionsBlockedError } from "@/lib/incidents/switches";
import {
  enforceRateLimit,
  LimitStoreUnavailableError,
  RateLimitedError,
} from "@/lib/ratelimit/runtime";
import {
  auditCallback,
  type CallbackResult,
  type CompleteConnectInput,
  type Context,
  fail,
  missingScope,
  refuse,
} from "./callback-outcomes";
import { EXCHANGE_MESSAGES, exchangeCode } from "./grant-exchange";
import { mayManageMailboxes, storeGrant } from "./grant-storage";
import { withdrawGrant } from "./grant-withdrawal";
import {
  getMailProvider,
  isProviderId,
  isProviderIssuer,
  type MailProvider,
  missingMailScopes,
} from "./providers";

// The OAuth callback: the checks of the response in order, then the code redeemed and the grant
// stored (grant-exchange.ts, grant-storage.ts), or withdrawn when it is not kept
// (grant-withdrawal.ts). What each outcome records is in callback-outcomes.ts.

export type { CallbackResult, CompleteConnectInput, RefusalReason } from "./callback-outcomes";

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
    const key = input.userId ? `user:${input.userId}` : addressLimitKey(input.request.ip);
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
      ? await withdrawGrant(ctx.db, provider, transaction, grant.issued, grant)
      : null;
    return fail(
      ctx,
      orgId,
      grant.error,
      EXCHANGE_MESSAGES[grant.error] ??
        `${provider.label} did not complete the connection (${grant.error}). Try again.`,
      grantWithdrawn,
    );
  }

  // Without the mail scope the grant is useless to us: withdraw it rather than leave it alive.
  const missing = missingMailScopes(provider, grant.scopes);
  if (missing.length > 0) {
    const grantWithdrawn = await withdrawGrant(ctx.db, provider, transaction, grant, grant);
    return missingScope(ctx, orgId, missing, grant.scopes, grantWithdrawn);
  }

  let stored: Awaited<ReturnType<typeof storeGrant>>;
  try {
    stored = await storeGrant(ctx.db, ctx, provider, transaction, grant);
  } catch (error) {
    // Nothing was stored (the database failed): a grant left alive would be nobody's to revoke.
    await withdrawGrant(ctx.db, provider, transaction, grant, grant).catch(() => null);
    throw error;
  }
  if (stored.kind === "missing_scope") {
    const grantWithdrawn = await withdrawGrant(ctx.db, provider, transaction, grant, grant);
    return missingScope(ctx, orgId, stored.missing, grant.scopes, grantWithdrawn);
  }
  if (stored.kind === "refused") {
    const grantWithdrawn = await withdrawGrant(ctx.db, provider, transaction, grant, grant);
    return refuse(ctx, stored.reason, orgId, {
      ...(stored.mailboxId ? { mailboxId: stored.mailboxId } : {}),
      metadata: { ...stored.metadata, codeRedeemed: true },
      grantWithdrawn,
    });
  }
  await stored.notification?.deliver();
  return stored.result;
}
