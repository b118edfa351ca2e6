import "server-only";
import type { Database, Tx } from "@/db";
import type { Actor, RequestInfo } from "@/lib/audit/events";
import { auditCallerRefusal } from "@/lib/audit/refusals";
import { writeAuditEvent } from "@/lib/audit/write";
import type { Withdrawal } from "./withdrawal-words";

// What an OAuth callback answers, and the audit event each answer leaves.

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
  | "connections_blocked"
  | "revoked_meanwhile";

export type CallbackResult =
  | {
      kind: "connected";
      mailboxId: string;
      address: string;
      scopes: string[];
      reconnected: boolean;
    }
  | { kind: "missing_scope"; missing: string[]; granted: string[]; grantWithdrawn: Withdrawal }
  | { kind: "denied"; message: string }
  | {
      kind: "refused";
      reason: RefusalReason;
      message: string;
      mailboxId?: string;
      /** Set when the provider had issued a grant: what became of it. */
      grantWithdrawn?: Withdrawal;
    }
  | { kind: "failed"; message: string; grantWithdrawn?: Withdrawal };

export type CompleteConnectInput = {
  providerId: string;
  /** The full callback request URL, query included. */
  callbackUrl: URL;
  /** The signed-in person, or null. */
  userId: string | null;
  request: RequestInfo;
};

export const REFUSAL_MESSAGES: Record<RefusalReason, string> = {
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
  revoked_meanwhile:
    "A mailbox of this account was disconnected while this connection was being completed, and " +
    "the provider ended this permission with it. Nothing was stored; connect again.",
};

/** Refusals of a person or of an account (not a broken or forged response). */
export const DENIED_REASONS: ReadonlySet<RefusalReason> = new Set([
  "rate_limited",
  "other_user",
  "not_permitted",
  "other_account",
  "address_in_use",
  "connections_blocked",
]);

/** One callback being handled: who is calling (a person, or the system when signed out). */
export type Context = { db: Database; input: CompleteConnectInput; actor: Actor };

type Audit = {
  orgId: string | null;
  outcome: "success" | "failure" | "denied";
  metadata: Record<string, unknown>;
};

function callbackEvent(ctx: Context, audit: Audit) {
  return {
    orgId: audit.orgId,
    actor: ctx.actor,
    action: "oauth.callback" as const,
    outcome: audit.outcome,
    request: ctx.input.request,
    metadata: { provider: ctx.input.providerId, ...audit.metadata },
  };
}

export async function auditCallback(db: Database | Tx, ctx: Context, audit: Audit) {
  await writeAuditEvent(db, callbackEvent(ctx, audit));
}

export async function refuse(
  ctx: Context,
  reason: RefusalReason,
  orgId: string | null,
  details: {
    mailboxId?: string;
    metadata?: Record<string, unknown>;
    grantWithdrawn?: Withdrawal;
  } = {},
) {
  const outcome: Audit["outcome"] = DENIED_REASONS.has(reason) ? "denied" : "failure";
  const withdrawn = details.grantWithdrawn ? { grantWithdrawn: details.grantWithdrawn } : {};
  const audit: Audit = {
    orgId,
    outcome,
    metadata: { result: "refused", reason, ...details.metadata, ...withdrawn },
  };
  // Past the limit a caller can repeat this as fast as they like (sign-up is open): one event
  // per caller and minute, with the count it stands for.
  if (reason === "rate_limited") await auditCallerRefusal(ctx.db, callbackEvent(ctx, audit));
  else await auditCallback(ctx.db, ctx, audit);
  return {
    kind: "refused",
    reason,
    message: REFUSAL_MESSAGES[reason],
    ...(details.mailboxId ? { mailboxId: details.mailboxId } : {}),
    ...withdrawn,
  } as const;
}

export async function fail(
  ctx: Context,
  orgId: string | null,
  code: string,
  message: string,
  grantWithdrawn: Withdrawal | null = null,
) {
  const withdrawn = grantWithdrawn ? { grantWithdrawn } : {};
  await auditCallback(ctx.db, ctx, {
    orgId,
    outcome: "failure",
    metadata: { result: "failed", code, ...withdrawn },
  });
  return { kind: "failed", message, ...withdrawn } as const;
}

export async function missingScope(
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
  return { kind: "missing_scope", missing, granted, grantWithdrawn } as const;
}
