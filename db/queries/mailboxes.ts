import "server-only";
import {
  and,
  asc,
  eq,
  gt,
  gte,
  inArray,
  isNotNull,
  isNull,
  lt,
  ne,
  or,
  type SQL,
  sql,
} from "drizzle-orm";
import type { DbOrTx } from "@/db";
import { preparedOnce } from "@/db/prepared";
import {
  apiKeys,
  mailboxes,
  memberships,
  notices,
  oauthTransactions,
  type ProviderId,
  switches,
  users,
} from "@/db/schema";
import { GLOBAL_SWITCH_SCOPE, type SwitchRow } from "./switches";

// Mailboxes and their OAuth transactions. Whatever a person asks for is scoped by organisation;
// the token lifecycle (refresh, by mailbox id from the already-authorised send path) is not.
// Token columns are selected only by the functions whose names say "token".

const publicColumns = {
  id: mailboxes.id,
  orgId: mailboxes.orgId,
  provider: mailboxes.provider,
  address: mailboxes.address,
  providerSubject: mailboxes.providerSubject,
  tenant: mailboxes.tenant,
  status: mailboxes.status,
  grantedScopes: mailboxes.grantedScopes,
  accessTokenExpiresAt: mailboxes.accessTokenExpiresAt,
  hasRefreshToken: sql<boolean>`(${mailboxes.refreshTokenEnc} is not null)`,
  lastRefreshAt: mailboxes.lastRefreshAt,
  lastUsedAt: mailboxes.lastUsedAt,
  lastErrorCode: mailboxes.lastErrorCode,
  lastErrorCause: mailboxes.lastErrorCause,
  failureCount: mailboxes.failureCount,
  retryAfter: mailboxes.retryAfter,
  limitedUntil: mailboxes.limitedUntil,
  connectedBy: mailboxes.connectedBy,
  createdAt: mailboxes.createdAt,
  updatedAt: mailboxes.updatedAt,
};

export type MailboxSummary = Awaited<ReturnType<typeof listMailboxes>>[number];

/** The mailboxes page: no token column, with who connected each one. */
export async function listMailboxes({ db, orgId }: { db: DbOrTx; orgId: string }) {
  return db
    .select({
      ...publicColumns,
      connectedByEmail: users.email,
      connectedByName: users.name,
    })
    .from(mailboxes)
    .leftJoin(users, eq(users.id, mailboxes.connectedBy))
    .where(eq(mailboxes.orgId, orgId))
    .orderBy(asc(mailboxes.address));
}

/** The one mailbox matching `where` (already scoped by organisation), locked when asked. */
async function oneMailbox(db: DbOrTx, where: SQL | undefined, forUpdate: boolean) {
  const query = db.select(publicColumns).from(mailboxes).where(where).limit(1);
  const [row] = forUpdate ? await query.for("update") : await query;
  return row ?? null;
}

export async function getMailboxForOrg({
  db,
  orgId,
  mailboxId,
  forUpdate = false,
}: {
  db: DbOrTx;
  orgId: string;
  mailboxId: string;
  forUpdate?: boolean;
}) {
  return oneMailbox(db, and(eq(mailboxes.orgId, orgId), eq(mailboxes.id, mailboxId)), forUpdate);
}

/** The mailbox of one account at the provider (its stable subject, not its address). */
export async function findMailboxBySubject({
  db,
  orgId,
  provider,
  subject,
  forUpdate = false,
}: {
  db: DbOrTx;
  orgId: string;
  provider: ProviderId;
  subject: string;
  forUpdate?: boolean;
}) {
  return oneMailbox(
    db,
    and(
      eq(mailboxes.orgId, orgId),
      eq(mailboxes.provider, provider),
      eq(mailboxes.providerSubject, subject),
    ),
    forUpdate,
  );
}

type Account = Pick<MailboxTokenRow, "provider" | "providerSubject" | "address">;

/**
 * Rows of the same account at the provider, in any organisation: its stable subject, or the
 * address for rows connected before subjects were recorded.
 */
function sameAccountAs(account: Account) {
  const same = account.providerSubject
    ? or(
        eq(mailboxes.providerSubject, account.providerSubject),
        and(isNull(mailboxes.providerSubject), eq(mailboxes.address, account.address)),
      )
    : eq(mailboxes.address, account.address);
  return and(eq(mailboxes.provider, account.provider), same);
}

/**
 * Whether a mailbox row other than this one (any, without an id), in any organisation, still
 * holds a token for the same account. Only a yes/no: where revoking ends every grant of the
 * account (Google), revoking this grant would cut that mailbox off too. Nothing about the other
 * row is returned. Read only under lockAccountGrants: isAccountInUseElsewhere.
 */
async function isAccountConnectedElsewhere({
  db,
  mailbox,
}: {
  db: DbOrTx;
  mailbox: Account & { id?: string };
}) {
  const [row] = await db
    .select({ id: mailboxes.id })
    .from(mailboxes)
    .where(
      and(
        sameAccountAs(mailbox),
        mailbox.id ? ne(mailboxes.id, mailbox.id) : undefined,
        or(isNotNull(mailboxes.refreshTokenEnc), isNotNull(mailboxes.accessTokenEnc)),
      ),
    )
    .limit(1);
  return Boolean(row);
}

/**
 * Whether a revocation that may have ended the account's grants reached the provider at or after
 * `since`: a revoke of a row of the account, in any organisation, or a callback withdrawing a
 * grant of the account it did not keep (recordGrantRevoked). Where revoking ends every grant of
 * the account (Google), tokens issued before then may be dead; a revoke that never asked the
 * provider (kept_in_use, no token held) ended nothing there. Read under lockAccountGrants,
 * which both hold until their record commits.
 */
export async function isAccountRevokedSince({
  db,
  account,
  since,
}: {
  db: DbOrTx;
  account: Account;
  since: Date;
}) {
  const [row] = await db
    .select({ id: mailboxes.id })
    .from(mailboxes)
    .where(and(sameAccountAs(account), gte(mailboxes.providerRevokedAt, since)))
    .limit(1);
  if (row) return true;
  if (!account.providerSubject) return false;
  const [withdrawn] = await db
    .select({ id: oauthTransactions.id })
    .from(oauthTransactions)
    .where(
      and(
        eq(oauthTransactions.provider, account.provider),
        eq(oauthTransactions.grantSubject, account.providerSubject),
        gte(oauthTransactions.grantRevokedAt, since),
      ),
    )
    .limit(1);
  return Boolean(withdrawn);
}

/**
 * Serialises the revocations of one account's grants until the transaction ends, so two rows of
 * the same account disconnected at once cannot each see the other still connected and both
 * leave the grant alive at the provider; a connect's store with them, so that it sees a
 * revocation that may have ended its fresh grant (isAccountRevokedSince); and a callback's
 * withdrawal of a grant it did not keep. The account is locked by its subject and then by its
 * address (rows from before subjects were recorded are the account by address), always in that
 * order. Every caller takes it after any mailbox row lock and takes no row lock after it.
 */
export async function lockAccountGrants({ db, mailbox }: { db: DbOrTx; mailbox: Account }) {
  const keys = [mailbox.providerSubject, mailbox.address].filter(
    (key, i, all): key is string => key !== null && all.indexOf(key) === i,
  );
  for (const account of keys) {
    await db.execute(
      sql`select pg_advisory_xact_lock(hashtextextended(${`mailbox-grant:${mailbox.provider}:${account}`}, 0))`,
    );
  }
}

/**
 * Takes the account's lock (lockAccountGrants) and says whether another mailbox row still holds
 * a token of the account (isAccountConnectedElsewhere): the one rule for whether revoking a
 * grant of an account whose revocation ends all its grants (Google) would cut a mailbox off, for
 * a disconnect and for a callback withdrawing a grant it does not keep alike.
 */
export async function isAccountInUseElsewhere({
  db,
  mailbox,
}: {
  db: DbOrTx;
  mailbox: Account & { id?: string };
}) {
  await lockAccountGrants({ db, mailbox });
  return isAccountConnectedElsewhere({ db, mailbox });
}

/**
 * By id or address: what the send API accepts as `mailbox`. With `apiKeyId`, the same statement
 * says whether that key of the organisation is still unrevoked (`keyActive`) and which
 * mailboxes it may use now (`keyAllowedMailboxIds`), so the send path re-checks a key verified
 * earlier (or remembered: lib/mail/api-keys.ts) without a read of its own.
 */
export async function findMailboxByIdOrAddress({
  db,
  orgId,
  mailbox,
  apiKeyId = null,
}: {
  db: DbOrTx;
  orgId: string;
  mailbox: string;
  apiKeyId?: string | null;
}) {
  // Null without a key: the subquery finds no row.
  const [row] = await preparedOnce(db, "mailbox_for_send", (handle, name) =>
    handle
      .select({
        ...publicColumns,
        keyActive: sql<
          boolean | null
        >`(select ${apiKeys.revokedAt} is null and (${apiKeys.expiresAt} is null or ${apiKeys.expiresAt} > now()) from ${apiKeys} where ${apiKeys.id} = ${sql.placeholder("apiKeyId")} and ${apiKeys.orgId} = ${sql.placeholder("orgId")})`,
        keyAllowedMailboxIds: sql<
          string[] | null
        >`(select ${apiKeys.allowedMailboxIds} from ${apiKeys} where ${apiKeys.id} = ${sql.placeholder("apiKeyId")} and ${apiKeys.orgId} = ${sql.placeholder("orgId")})`,
        // The send's incident switch in the same statement: the global one first.
        sendingPause: sql<SwitchRow | null>`(select json_build_object('scopeKey', ${switches.scopeKey}, 'reason', ${switches.reason}, 'setAt', ${switches.setAt}) from ${switches} where ${switches.kind} = 'pause_sending' and ${switches.scopeKey} in (${GLOBAL_SWITCH_SCOPE}, ${sql.placeholder("orgId")}) order by ${switches.scopeKey} = ${GLOBAL_SWITCH_SCOPE} desc limit 1)`,
      })
      .from(mailboxes)
      .where(
        and(
          eq(mailboxes.orgId, sql.placeholder("orgId")),
          or(
            eq(mailboxes.id, sql.placeholder("mailbox")),
            eq(mailboxes.address, sql.placeholder("address")),
          ),
        ),
      )
      .orderBy(asc(mailboxes.createdAt))
      .limit(1)
      .prepare(name),
  ).execute({ orgId, mailbox, address: mailbox.toLowerCase(), apiKeyId });
  return row ?? null;
}

export async function findMailboxByAddress({
  db,
  orgId,
  provider,
  address,
  forUpdate = false,
}: {
  db: DbOrTx;
  orgId: string;
  provider: ProviderId;
  address: string;
  forUpdate?: boolean;
}) {
  return oneMailbox(
    db,
    and(
      eq(mailboxes.orgId, orgId),
      eq(mailboxes.provider, provider),
      eq(mailboxes.address, address.toLowerCase()),
    ),
    forUpdate,
  );
}

/* ---- Token lifecycle (by mailbox id; callers are already authorised for the mailbox) ---- */

export type MailboxTokenRow = typeof mailboxes.$inferSelect;

export async function getMailboxWithTokens({ db, mailboxId }: { db: DbOrTx; mailboxId: string }) {
  const [row] = await db.select().from(mailboxes).where(eq(mailboxes.id, mailboxId)).limit(1);
  return row ?? null;
}

/**
 * The row lock that makes one refresh per mailbox across every process. Pass orgId when a
 * person asked (revoke): a mailbox of another organisation is then simply not found.
 */
export async function lockMailboxWithTokens({
  db,
  mailboxId,
  orgId,
}: {
  db: DbOrTx;
  mailboxId: string;
  orgId?: string;
}) {
  const [row] = await db
    .select()
    .from(mailboxes)
    .where(
      orgId
        ? and(eq(mailboxes.id, mailboxId), eq(mailboxes.orgId, orgId))
        : eq(mailboxes.id, mailboxId),
    )
    .limit(1)
    .for("update");
  return row ?? null;
}

export type MailboxUpdate = Partial<
  Omit<typeof mailboxes.$inferInsert, "id" | "orgId" | "provider" | "createdAt">
>;

export async function updateMailbox({
  db,
  mailboxId,
  set,
}: {
  db: DbOrTx;
  mailboxId: string;
  set: MailboxUpdate;
}) {
  await db
    .update(mailboxes)
    .set({ ...set, updatedAt: new Date() })
    .where(eq(mailboxes.id, mailboxId));
}

export async function insertMailbox({
  db,
  values,
}: {
  db: DbOrTx;
  values: typeof mailboxes.$inferInsert & { id: string };
}) {
  const [row] = await db
    .insert(mailboxes)
    .values(values)
    // Either unique key (address or subject) taken means someone connected it a moment ago.
    .onConflictDoNothing()
    .returning({ id: mailboxes.id });
  return row ?? null;
}

export async function touchMailboxLastUsed({ db, mailboxId }: { db: DbOrTx; mailboxId: string }) {
  await db.update(mailboxes).set({ lastUsedAt: new Date() }).where(eq(mailboxes.id, mailboxId));
}

/* ---- OAuth transactions (one-time state) ---- */

export async function insertOAuthTransaction({
  db,
  values,
}: {
  db: DbOrTx;
  values: typeof oauthTransactions.$inferInsert & { id: string };
}) {
  await db.insert(oauthTransactions).values(values);
}

/**
 * The callback revoked the grant this transaction's code was redeemed for (it did not keep it):
 * written under lockAccountGrants, so that a connect of the account waiting for that lock sees
 * it (isAccountRevokedSince). Kept as long as the transaction is.
 */
export async function recordGrantRevoked({
  db,
  transactionId,
  subject,
}: {
  db: DbOrTx;
  transactionId: string;
  subject: string;
}) {
  await db
    .update(oauthTransactions)
    .set({ grantRevokedAt: new Date(), grantSubject: subject })
    .where(eq(oauthTransactions.id, transactionId));
}

/**
 * Marks the transaction used if, and only if, it is unused, unexpired and the caller's: the
 * single UPDATE is what makes a state one-time even when two callbacks race.
 */
export async function consumeOAuthTransaction({
  db,
  state,
  userId,
  provider,
  now,
}: {
  db: DbOrTx;
  state: string;
  userId: string;
  provider: ProviderId;
  now: Date;
}) {
  const [row] = await db
    .update(oauthTransactions)
    .set({ usedAt: now })
    .where(
      and(
        eq(oauthTransactions.state, state),
        isNull(oauthTransactions.usedAt),
        eq(oauthTransactions.userId, userId),
        eq(oauthTransactions.provider, provider),
        gt(oauthTransactions.expiresAt, now),
      ),
    )
    .returning();
  return row ?? null;
}

/** Transactions long past expiry: kept a day to explain a late callback, then removed. */
export async function deleteStaleOAuthTransactions({ db, before }: { db: DbOrTx; before: Date }) {
  await db.delete(oauthTransactions).where(lt(oauthTransactions.expiresAt, before));
}

/** Only to explain a refusal; never to proceed with. */
export async function findOAuthTransactionByState({ db, state }: { db: DbOrTx; state: string }) {
  const [row] = await db
    .select({
      orgId: oauthTransactions.orgId,
      userId: oauthTransactions.userId,
      provider: oauthTransactions.provider,
      expiresAt: oauthTransactions.expiresAt,
      usedAt: oauthTransactions.usedAt,
    })
    .from(oauthTransactions)
    .where(eq(oauthTransactions.state, state))
    .limit(1);
  return row ?? null;
}

/* ---- Notices ---- */

/** The person who connected the mailbox (if still a member) and the organisation's admins. */
export async function listMailboxNoticeRecipients({
  db,
  orgId,
  connectedBy,
}: {
  db: DbOrTx;
  orgId: string;
  connectedBy: string | null;
}) {
  const roleOrConnector = connectedBy
    ? or(inArray(memberships.role, ["owner", "admin"]), eq(memberships.userId, connectedBy))
    : inArray(memberships.role, ["owner", "admin"]);
  return db
    .select({ userId: users.id, email: users.email, role: memberships.role })
    .from(memberships)
    .innerJoin(users, eq(users.id, memberships.userId))
    .where(and(eq(memberships.orgId, orgId), roleOrConnector));
}

export async function insertNotices({
  db,
  values,
}: {
  db: DbOrTx;
  values: Array<typeof notices.$inferInsert>;
}) {
  if (values.length === 0) return;
  await db.insert(notices).values(values);
}

export async function listNoticesForMailbox({
  db,
  orgId,
  mailboxId,
}: {
  db: DbOrTx;
  orgId: string;
  mailboxId: string;
}) {
  return db
    .select({
      id: notices.id,
      userId: notices.userId,
      kind: notices.kind,
      title: notices.title,
      body: notices.body,
      createdAt: notices.createdAt,
    })
    .from(notices)
    .where(and(eq(notices.orgId, orgId), eq(notices.mailboxId, mailboxId)))
    .orderBy(asc(notices.createdAt));
}

/** Mailboxes that still hold a token (the "revoke every token" incident switch walks these). */
export async function listMailboxIdsWithTokens({ db, orgId }: { db: DbOrTx; orgId?: string }) {
  const holdsToken = or(isNotNull(mailboxes.refreshTokenEnc), isNotNull(mailboxes.accessTokenEnc));
  return db
    .select({ id: mailboxes.id, orgId: mailboxes.orgId, address: mailboxes.address })
    .from(mailboxes)
    .where(orgId ? and(eq(mailboxes.orgId, orgId), holdsToken) : holdsToken);
}

/** A status a mailbox keeps while paused when the problem behind it is still on record. */
export type MailboxProblemStatus = "needs_reconnect" | "admin_action_required";

/**
 * Pauses a mailbox of this organisation (from any status but revoked), or resumes a paused one:
 * to `needs_reconnect` when it holds no token, to `resumeTo` (the status it had before the
 * pause) while the error that caused that status is still recorded — a reconnect during the
 * pause clears it — and to `connected` otherwise. Null when there is no such mailbox here or it
 * was not in a state to change.
 */
export async function setMailboxPaused({
  db,
  orgId,
  mailboxId,
  paused,
  resumeTo = null,
}: {
  db: DbOrTx;
  orgId: string;
  mailboxId: string;
  paused: boolean;
  resumeTo?: MailboxProblemStatus | null;
}) {
  const noToken = sql`${mailboxes.refreshTokenEnc} is null and ${mailboxes.accessTokenEnc} is null`;
  const problem = resumeTo
    ? sql`when ${mailboxes.lastErrorCode} is not null then ${resumeTo}::mailbox_status`
    : sql``;
  const [row] = await db
    .update(mailboxes)
    .set({
      status: paused
        ? "paused"
        : sql`case when ${noToken} then 'needs_reconnect'::mailbox_status ${problem} else 'connected'::mailbox_status end`,
      updatedAt: new Date(),
    })
    .where(
      and(
        eq(mailboxes.id, mailboxId),
        eq(mailboxes.orgId, orgId),
        paused
          ? inArray(mailboxes.status, ["connected", "needs_reconnect", "admin_action_required"])
          : eq(mailboxes.status, "paused"),
      ),
    )
    .returning({ id: mailboxes.id, address: mailboxes.address, status: mailboxes.status });
  return row ?? null;
}

export async function countPausedMailboxes({ db, orgId }: { db: DbOrTx; orgId: string }) {
  const [row] = await db
    .select({ n: sql<number>`count(*)::int` })
    .from(mailboxes)
    .where(and(eq(mailboxes.orgId, orgId), eq(mailboxes.status, "paused")));
  return Number(row?.n ?? 0);
}

/** How many of the organisation's mailboxes are in each status (absent statuses are 0). */
export async function countMailboxesByStatus({ db, orgId }: { db: DbOrTx; orgId: string }) {
  const rows = await db
    .select({ status: mailboxes.status, n: sql<number>`count(*)::int` })
    .from(mailboxes)
    .where(eq(mailboxes.orgId, orgId))
    .groupBy(mailboxes.status);
  const counts: Record<(typeof mailboxes.$inferSelect)["status"], number> = {
    connected: 0,
    needs_reconnect: 0,
    admin_action_required: 0,
    paused: 0,
    revoked: 0,
  };
  for (const row of rows) counts[row.status] = Number(row.n);
  return counts;
}

/** Connected mailboxes at their provider's daily limit now (mailboxes.limited_until ahead). */
export async function countLimitedMailboxes({ db, orgId }: { db: DbOrTx; orgId: string }) {
  const [row] = await db
    .select({ n: sql<number>`count(*)::int` })
    .from(mailboxes)
    .where(
      and(
        eq(mailboxes.orgId, orgId),
        eq(mailboxes.status, "connected"),
        gt(mailboxes.limitedUntil, sql`now()`),
      ),
    );
  return Number(row?.n ?? 0);
}

/** The organisation's mailboxes that cannot send until a person acts (for links). */
export async function listMailboxesNeedingAction({ db, orgId }: { db: DbOrTx; orgId: string }) {
  return db
    .select({ id: mailboxes.id, address: mailboxes.address, status: mailboxes.status })
    .from(mailboxes)
    .where(
      and(
        eq(mailboxes.orgId, orgId),
        inArray(mailboxes.status, ["needs_reconnect", "admin_action_required"]),
      ),
    )
    .orderBy(asc(mailboxes.address))
    .limit(50);
}

/**
 * The health check's claim, in one statement: connected mailboxes whose access token expires
 * before `refreshBefore`, or unused and untested since `idleSince`. Stamping
 * `health_checked_at` is the claim, so a second checker right after finds nothing idle.
 */
export async function claimMailboxesForHealthCheck({
  db,
  now,
  refreshBefore,
  idleSince,
}: {
  db: DbOrTx;
  now: Date;
  refreshBefore: Date;
  idleSince: Date;
}) {
  const expiring = lt(mailboxes.accessTokenExpiresAt, refreshBefore);
  const idle = and(
    lt(sql`coalesce(${mailboxes.lastUsedAt}, ${mailboxes.createdAt})`, idleSince),
    or(isNull(mailboxes.healthCheckedAt), lt(mailboxes.healthCheckedAt, idleSince)),
  );
  const rows = await db
    .update(mailboxes)
    .set({ healthCheckedAt: now })
    .where(and(eq(mailboxes.status, "connected"), or(expiring, idle)))
    .returning({
      id: mailboxes.id,
      orgId: mailboxes.orgId,
      accessTokenExpiresAt: mailboxes.accessTokenExpiresAt,
      lastUsedAt: mailboxes.lastUsedAt,
      createdAt: mailboxes.createdAt,
    });
  return rows.map((r) => ({
    id: r.id,
    orgId: r.orgId,
    expiring: r.accessTokenExpiresAt !== null && r.accessTokenExpiresAt < refreshBefore,
    idle: (r.lastUsedAt ?? r.createdAt) < idleSince,
  }));
}
