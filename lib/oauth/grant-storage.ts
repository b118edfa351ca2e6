import "server-only";
import { randomUUID } from "node:crypto";
import type { Database, Tx } from "@/db";
import {
  findMailboxByAddress,
  findMailboxBySubject,
  getMailboxForOrg,
  insertMailbox,
  isAccountRevokedSince,
  lockAccountGrants,
  updateMailbox,
} from "@/db/queries/mailboxes";
import { lockMembershipRole } from "@/db/queries/organizations";
import type { OAuthTransaction } from "@/db/schema";
import { writeAuditEvent } from "@/lib/audit/write";
import { hasPermission } from "@/lib/auth/roles";
import { connectionsBlock } from "@/lib/incidents/switches";
import type { CallbackResult, Context } from "./callback-outcomes";
import { sealGrant } from "./grant-columns";
import type { Grant } from "./grant-exchange";
import { type MailboxNotification, notifyMailboxProblem } from "./notify";
import type { MailProvider } from "./providers";

// Storing a grant that passed every check: which mailbox row it renews, and the row written
// with its audit events in the caller's transaction.

/** The person must still be allowed to connect mailboxes for the transaction's organisation. */
export async function mayManageMailboxes(db: Database | Tx, transaction: OAuthTransaction) {
  const role = await lockMembershipRole({
    db,
    orgId: transaction.orgId,
    userId: transaction.userId,
  });
  return role !== null && hasPermission(role, "manageMailboxes");
}

export type Stored =
  | { kind: "stored"; result: CallbackResult; notification: MailboxNotification | null }
  | { kind: "missing_scope"; missing: string[] }
  | {
      kind: "refused";
      reason:
        | "not_permitted"
        | "other_account"
        | "address_in_use"
        | "connections_blocked"
        | "revoked_meanwhile";
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

/**
 * Where revoking ends every grant of the account (Google), a revoke of one of the account's
 * mailboxes that finished after this code was sent to be redeemed may have ended this grant
 * too. The account lock is taken after the row locks, in the order revoke takes them, so the
 * two serialise without deadlocking: a revoke still running is waited for and then seen here;
 * one that starts later sees this row connected (kept_in_use), or is this row's own revoke.
 */
async function revokedMeanwhile(tx: Tx, provider: MailProvider, grant: Grant) {
  const account = { provider: provider.id, providerSubject: grant.subject, address: grant.address };
  await lockAccountGrants({ db: tx, mailbox: account });
  return isAccountRevokedSince({ db: tx, account, since: grant.requestedAt });
}

/**
 * Stores the grant in a transaction of its own. An insert that meets a row someone committed a
 * moment ago is tried again as a reconnect of that row in a new transaction, never in the same
 * one: that one holds the account lock by then, and locking the row after it would reverse the
 * order a revoke takes them in (row, then account), so the two could deadlock.
 */
export async function storeGrant(
  db: Database,
  ctx: Context,
  provider: MailProvider,
  transaction: OAuthTransaction,
  grant: Grant,
): Promise<Stored> {
  // A second conflict needs that row deleted and another inserted meanwhile; a third, again.
  for (let attempt = 1; ; attempt++) {
    const stored = await db.transaction((tx) =>
      storeMailbox(tx, ctx, provider, transaction, grant),
    );
    if (stored.kind !== "inserted_meanwhile") return stored;
    if (attempt === 3) throw new Error("The mailbox row kept changing while it was being stored.");
  }
}

/** Nothing written yet (locks only): the caller commits and starts again. */
type InsertedMeanwhile = { kind: "inserted_meanwhile" };

async function storeMailbox(
  tx: Tx,
  ctx: Context,
  provider: MailProvider,
  transaction: OAuthTransaction,
  grant: Grant,
): Promise<Stored | InsertedMeanwhile> {
  const orgId = transaction.orgId;
  // Checked again under a lock: the role may have changed while the code was being redeemed.
  if (!(await mayManageMailboxes(tx, transaction)))
    return { kind: "refused", reason: "not_permitted" };
  // And the switch: "Block new connections" pulled during the exchange stops this one too.
  const block = await connectionsBlock({ db: tx, orgId });
  if (block)
    return { kind: "refused", reason: "connections_blocked", metadata: { scope: block.scope } };
  const found = await mailboxToRenew(tx, provider, transaction, grant);
  if ("kind" in found) return found;
  const { existing } = found;
  if (provider.revocationEndsAccountGrants && (await revokedMeanwhile(tx, provider, grant))) {
    return {
      kind: "refused",
      reason: "revoked_meanwhile",
      ...(existing ? { mailboxId: existing.id, metadata: { mailboxId: existing.id } } : {}),
    };
  }
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
    // Someone connected the same account or address a moment ago: nothing is written yet.
    if (!inserted) return { kind: "inserted_meanwhile" };
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
