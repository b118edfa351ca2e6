import "server-only";
import { and, asc, eq, gt, inArray, isNotNull, or, type SQL, sql } from "drizzle-orm";
import type { PgTable } from "drizzle-orm/pg-core";
import type { DbOrTx } from "@/db";
import {
  accounts,
  apiKeys,
  auditEvents,
  dataRequests,
  invitations,
  jobItems,
  jobs,
  mailboxes,
  memberships,
  messages,
  notices,
  notificationOutbox,
  organizations,
  sessions,
  users,
  webhookDeliveries,
} from "@/db/schema";
import { FIRST_PAGE, type PageRequest } from "@/lib/paging";
import {
  matchesPattern,
  mentionsAddress,
  personPattern,
  replaceMatches,
  wholeAddressPattern,
} from "./address-match";
import { type PageKeys, pageKeyColumns, readKeysetPage } from "./paging";

// A data subject as one organisation holds them: an account (by email), or only an address that
// appears in its mail and audit log. Every query is scoped by organisation, except the account's
// own rows (profile, sessions, sign-in accounts), which belong to no organisation.

/** A keyset page of the organisation's rows about an address: ids after `after`, `limit` of them. */
type AddressPage = { db: DbOrTx; orgId: string; email: string; after: string; limit: number };

/** Recipient entries are `address` or `Name <address>`: an entry names the person exactly so. */
function namesAddress(entry: SQL, email: string): SQL<boolean> {
  return sql<boolean>`(lower(${entry}) = ${email} or right(lower(${entry}), ${email.length + 2}) = ${`<${email}>`})`;
}

/**
 * Queued messages of the organisation that would still be sent to the address, from one of the
 * person's mailboxes or with one of their API keys (both are deleted with them).
 */
function waitingFor(orgId: string, userId: string | null, email: string) {
  return and(
    eq(messages.orgId, orgId),
    isNotNull(messages.nextAttemptAt),
    inArray(messages.status, ["queued", "retrying"]),
    or(
      isRecipient(email),
      inArray(
        messages.mailboxId,
        sql`(select ${mailboxes.id} from ${mailboxes} where ${mailboxesOf(orgId, userId, email)})`,
      ),
      userId === null
        ? undefined
        : and(
            eq(messages.senderType, "api_key"),
            inArray(
              messages.senderId,
              sql`(select ${apiKeys.id} from ${apiKeys} where ${apiKeys.orgId} = ${orgId} and ${apiKeys.createdBy} = ${userId})`,
            ),
          ),
    ),
  );
}

/** Webhook deliveries of the organisation whose body names the address (a mailbox's, say). */
function deliveriesNaming(orgId: string, email: string) {
  return and(
    eq(webhookDeliveries.orgId, orgId),
    mentionsAddress(sql`${webhookDeliveries.body}`, email),
  );
}

/** Invitations of the organisation to the address. */
function invitationsTo(orgId: string, email: string) {
  return and(eq(invitations.orgId, orgId), sql`lower(${invitations.email}) = ${email}`);
}

/** Notices of the organisation for the person's account, or whose words name the address. */
function noticesNaming(orgId: string, userId: string | null, email: string) {
  return and(
    eq(notices.orgId, orgId),
    or(
      userId === null ? undefined : eq(notices.userId, userId),
      mentionsAddress(sql`${notices.title} || ' ' || ${notices.body}`, email),
    ),
  );
}

/** Notification emails of the organisation to the address, or whose words name it. */
function notificationEmailsNaming(orgId: string, email: string) {
  return and(
    eq(notificationOutbox.orgId, orgId),
    or(
      sql`lower(${notificationOutbox.recipient}) = ${email}`,
      mentionsAddress(sql`${notificationOutbox.event}::text`, email),
    ),
  );
}

/** Deletes the rows of `table` that `where` picks; returns how many went. */
async function deleteCounted(db: DbOrTx, table: PgTable, where: SQL | undefined) {
  const rows = await db.delete(table).where(where).returning({ one: sql`1` });
  return rows.length;
}

function isRecipient(email: string): SQL<boolean> {
  return sql<boolean>`exists (select 1 from jsonb_array_elements_text(
    coalesce(${messages.recipients}->'to', '[]') || coalesce(${messages.recipients}->'cc', '[]')
    || coalesce(${messages.recipients}->'bcc', '[]')) as r(entry) where ${namesAddress(sql`r.entry`, email)})`;
}

export async function findUserByEmail({ db, email }: { db: DbOrTx; email: string }) {
  const [row] = await db
    .select({
      id: users.id,
      name: users.name,
      email: users.email,
      emailVerified: users.emailVerified,
      image: users.image,
      createdAt: users.createdAt,
    })
    .from(users)
    .where(sql`lower(${users.email}) = ${email}`)
    .limit(1);
  return row ?? null;
}

export async function getUserProfile({ db, userId }: { db: DbOrTx; userId: string }) {
  const [row] = await db
    .select({
      id: users.id,
      name: users.name,
      email: users.email,
      emailVerified: users.emailVerified,
      image: users.image,
      createdAt: users.createdAt,
    })
    .from(users)
    .where(eq(users.id, userId));
  return row ?? null;
}

export async function listMembershipsWithOrg({ db, userId }: { db: DbOrTx; userId: string }) {
  return db
    .select({
      orgId: memberships.orgId,
      orgName: organizations.name,
      role: memberships.role,
      since: memberships.createdAt,
    })
    .from(memberships)
    .innerJoin(organizations, eq(organizations.id, memberships.orgId))
    .where(eq(memberships.userId, userId))
    .orderBy(asc(memberships.createdAt));
}

/** Session metadata: never the token. */
export async function listSessionMetadata({ db, userId }: { db: DbOrTx; userId: string }) {
  return db
    .select({ expires: sessions.expires, activeOrgId: sessions.activeOrgId })
    .from(sessions)
    .where(eq(sessions.userId, userId))
    .orderBy(asc(sessions.expires));
}

/** Sign-in links: which provider account signs this person in (never a token). */
export async function listSignInAccounts({ db, userId }: { db: DbOrTx; userId: string }) {
  return db
    .select({ provider: accounts.provider, type: accounts.type })
    .from(accounts)
    .where(eq(accounts.userId, userId));
}

function mailboxesOf(orgId: string, userId: string | null, email: string) {
  return and(
    eq(mailboxes.orgId, orgId),
    or(
      userId === null ? undefined : eq(mailboxes.connectedBy, userId),
      sql`lower(${mailboxes.address}) = ${email}`,
    ),
  );
}

/** Mailboxes the person connected, or whose address is theirs: metadata, never tokens. */
export async function listSubjectMailboxes({
  db,
  orgId,
  userId,
  email,
}: {
  db: DbOrTx;
  orgId: string;
  userId: string | null;
  email: string;
}) {
  return db
    .select({
      id: mailboxes.id,
      provider: mailboxes.provider,
      address: mailboxes.address,
      status: mailboxes.status,
      grantedScopes: mailboxes.grantedScopes,
      createdAt: mailboxes.createdAt,
      lastUsedAt: mailboxes.lastUsedAt,
      hasTokens: sql<boolean>`(${mailboxes.refreshTokenEnc} is not null or ${mailboxes.accessTokenEnc} is not null)`,
    })
    .from(mailboxes)
    .where(mailboxesOf(orgId, userId, email))
    .orderBy(asc(mailboxes.createdAt));
}

/** API keys the person created: metadata, never the hash. */
export async function listSubjectApiKeys({
  db,
  orgId,
  userId,
}: {
  db: DbOrTx;
  orgId: string;
  userId: string;
}) {
  return db
    .select({
      id: apiKeys.id,
      name: apiKeys.name,
      prefix: apiKeys.prefix,
      createdAt: apiKeys.createdAt,
      lastUsedAt: apiKeys.lastUsedAt,
      revokedAt: apiKeys.revokedAt,
    })
    .from(apiKeys)
    .where(and(eq(apiKeys.orgId, orgId), eq(apiKeys.createdBy, userId)));
}

const messageColumns = {
  id: messages.id,
  createdAt: messages.createdAt,
  sentAt: messages.sentAt,
  status: messages.status,
  senderType: messages.senderType,
  mailboxId: messages.mailboxId,
  subject: messages.subject,
  recipients: messages.recipients,
  errorCode: messages.errorCode,
};

function sentBy(orgId: string, userId: string) {
  return and(
    eq(messages.orgId, orgId),
    or(
      and(eq(messages.senderType, "user"), eq(messages.senderId, userId)),
      and(
        eq(messages.senderType, "api_key"),
        inArray(
          messages.senderId,
          sql`(select ${apiKeys.id} from ${apiKeys} where ${apiKeys.orgId} = ${orgId} and ${apiKeys.createdBy} = ${userId})`,
        ),
      ),
    ),
  );
}

/** Keyset pages of the messages the person sent (themselves or with their API keys). */
export async function listMessagesSentBy({
  db,
  orgId,
  userId,
  after,
  limit,
}: {
  db: DbOrTx;
  orgId: string;
  userId: string;
  after: string;
  limit: number;
}) {
  return db
    .select(messageColumns)
    .from(messages)
    .where(and(sentBy(orgId, userId), gt(messages.id, after)))
    .orderBy(asc(messages.id))
    .limit(limit);
}

/**
 * A message's recipient entries, per field, that name the address: what a message not sent by
 * the person shows them. The other recipients (a Bcc they never saw among them) are not theirs.
 */
function entriesNaming(email: string) {
  const field = (name: "to" | "cc" | "bcc") =>
    sql`(select coalesce(jsonb_agg(r.entry), '[]'::jsonb) from jsonb_array_elements_text(
      coalesce(${messages.recipients}->${name}::text, '[]')) as r(entry)
      where ${namesAddress(sql`r.entry`, email)})`;
  return sql<{ to: string[]; cc: string[]; bcc: string[] }>`jsonb_build_object(
    'to', ${field("to")}, 'cc', ${field("cc")}, 'bcc', ${field("bcc")})`;
}

/** Keyset pages of the messages addressed to the person (to, cc or bcc): their own entries only. */
export async function listMessagesAddressedTo({ db, orgId, email, after, limit }: AddressPage) {
  return db
    .select({ ...messageColumns, recipients: entriesNaming(email) })
    .from(messages)
    .where(and(eq(messages.orgId, orgId), gt(messages.id, after), isRecipient(email)))
    .orderBy(asc(messages.id))
    .limit(limit);
}

/**
 * Keyset pages of the other messages whose subject, SMTP reply or failure cause names the
 * address (what an erasure rewrites in messages not addressed to the person): no recipient of
 * them is the person's, so none is shown.
 */
export async function listMessagesNaming({ db, orgId, email, after, limit }: AddressPage) {
  return db
    .select({
      ...messageColumns,
      recipients: sql<{
        to: string[];
        cc: string[];
        bcc: string[];
      }>`'{"to":[],"cc":[],"bcc":[]}'::jsonb`,
    })
    .from(messages)
    .where(
      and(
        eq(messages.orgId, orgId),
        gt(messages.id, after),
        sql`not ${isRecipient(email)}`,
        or(
          mentionsAddress(sql`${messages.subject}`, email),
          mentionsAddress(sql`${messages.smtpResponse}`, email),
          mentionsAddress(sql`${messages.lastError}`, email),
        ),
      ),
    )
    .orderBy(asc(messages.id))
    .limit(limit);
}

/** Invitations to the address: role and date, never a token. */
export async function listSubjectInvitations({
  db,
  orgId,
  email,
}: {
  db: DbOrTx;
  orgId: string;
  email: string;
}) {
  return db
    .select({ id: invitations.id, role: invitations.role, createdAt: invitations.createdAt })
    .from(invitations)
    .where(invitationsTo(orgId, email))
    .orderBy(asc(invitations.createdAt));
}

/** Keyset pages of the notices for the person or naming them. */
export async function listNoticesNaming({
  db,
  orgId,
  userId,
  email,
  after,
  limit,
}: AddressPage & { userId: string | null }) {
  return db
    .select({
      id: notices.id,
      kind: notices.kind,
      title: notices.title,
      body: notices.body,
      createdAt: notices.createdAt,
      readAt: notices.readAt,
    })
    .from(notices)
    .where(and(noticesNaming(orgId, userId, email), gt(notices.id, after)))
    .orderBy(asc(notices.id))
    .limit(limit);
}

/**
 * Keyset pages of the notification emails to the person or naming them. An email to someone
 * else (an owner told of the person's joining) shows no recipient: that address is theirs.
 */
export async function listNotificationEmailsNaming({
  db,
  orgId,
  email,
  after,
  limit,
}: AddressPage) {
  const recipient = sql<string | null>`case when lower(${notificationOutbox.recipient}) = ${email}
    then ${notificationOutbox.recipient} end`;
  return db
    .select({
      id: notificationOutbox.id,
      recipient,
      event: notificationOutbox.event,
      createdAt: notificationOutbox.createdAt,
      sentAt: notificationOutbox.sentAt,
      outcome: notificationOutbox.outcome,
    })
    .from(notificationOutbox)
    .where(and(notificationEmailsNaming(orgId, email), gt(notificationOutbox.id, after)))
    .orderBy(asc(notificationOutbox.id))
    .limit(limit);
}

/** Keyset pages of the organisation's export and erasure requests about the address. */
export async function listDataRequestsAbout({ db, orgId, email, after, limit }: AddressPage) {
  return db
    .select({
      id: dataRequests.id,
      kind: dataRequests.kind,
      receivedAt: dataRequests.receivedAt,
      dueAt: dataRequests.dueAt,
      status: dataRequests.status,
      completedAt: dataRequests.completedAt,
    })
    .from(dataRequests)
    .where(
      and(
        eq(dataRequests.orgId, orgId),
        sql`lower(${dataRequests.subjectEmail}) = ${email}`,
        gt(dataRequests.id, after),
      ),
    )
    .orderBy(asc(dataRequests.id))
    .limit(limit);
}

/** Keyset pages of the webhook deliveries whose body names the address: the body as sent. */
export async function listWebhookDeliveriesNaming({ db, orgId, email, after, limit }: AddressPage) {
  return db
    .select({
      id: webhookDeliveries.id,
      endpointId: webhookDeliveries.endpointId,
      eventType: webhookDeliveries.eventType,
      status: webhookDeliveries.status,
      attempts: webhookDeliveries.attempts,
      createdAt: webhookDeliveries.createdAt,
      finishedAt: webhookDeliveries.finishedAt,
      body: webhookDeliveries.body,
    })
    .from(webhookDeliveries)
    .where(and(deliveriesNaming(orgId, email), gt(webhookDeliveries.id, after)))
    .orderBy(asc(webhookDeliveries.id))
    .limit(limit);
}

function auditNaming(orgId: string, userId: string | null, email: string) {
  return and(
    eq(auditEvents.orgId, orgId),
    or(
      userId === null ? undefined : eq(auditEvents.actorId, userId),
      userId === null ? undefined : eq(auditEvents.targetId, userId),
      mentionsAddress(sql`${auditEvents.actorLabel}`, email),
      mentionsAddress(sql`${auditEvents.personal}::text`, email),
    ),
  );
}

/** Keyset pages of the organisation's audit events where the person is actor, target or named. */
export async function listAuditEventsOfSubject({
  db,
  orgId,
  userId,
  email,
  afterId,
  limit,
}: {
  db: DbOrTx;
  orgId: string;
  userId: string | null;
  email: string;
  afterId: number;
  limit: number;
}) {
  return db
    .select({
      id: auditEvents.id,
      seq: auditEvents.seq,
      occurredAt: auditEvents.occurredAt,
      action: auditEvents.action,
      outcome: auditEvents.outcome,
      actorType: auditEvents.actorType,
      actorId: auditEvents.actorId,
      actorLabel: auditEvents.actorLabel,
      targetType: auditEvents.targetType,
      targetId: auditEvents.targetId,
      ip: auditEvents.ip,
      userAgent: auditEvents.userAgent,
      metadata: auditEvents.metadata,
      personal: auditEvents.personal,
    })
    .from(auditEvents)
    .where(and(auditNaming(orgId, userId, email), gt(auditEvents.id, afterId)))
    .orderBy(asc(auditEvents.id))
    .limit(limit);
}

async function count(db: DbOrTx, query: SQL): Promise<number> {
  const result = (await db.execute(query)) as unknown as { rows: { n: number | string }[] };
  return Number(result.rows[0]?.n ?? 0);
}

/** What the organisation holds about the person: what an export contains and an erasure does. */
export async function countSubjectData({
  db,
  orgId,
  userId,
  email,
}: {
  db: DbOrTx;
  orgId: string;
  userId: string | null;
  email: string;
}) {
  const [
    mailboxRows,
    keyRows,
    sent,
    addressed,
    events,
    invites,
    queued,
    deliveries,
    noticeRows,
    emails,
  ] = await Promise.all([
    db
      .select({ n: sql<number>`count(*)::int` })
      .from(mailboxes)
      .where(mailboxesOf(orgId, userId, email)),
    userId === null
      ? Promise.resolve([{ n: 0 }])
      : db
          .select({ n: sql<number>`count(*)::int` })
          .from(apiKeys)
          .where(and(eq(apiKeys.orgId, orgId), eq(apiKeys.createdBy, userId))),
    userId === null
      ? Promise.resolve([{ n: 0 }])
      : db.select({ n: sql<number>`count(*)::int` }).from(messages).where(sentBy(orgId, userId)),
    db
      .select({ n: sql<number>`count(*)::int` })
      .from(messages)
      .where(and(eq(messages.orgId, orgId), isRecipient(email))),
    db
      .select({ n: sql<number>`count(*)::int` })
      .from(auditEvents)
      .where(auditNaming(orgId, userId, email)),
    db
      .select({ n: sql<number>`count(*)::int` })
      .from(invitations)
      .where(invitationsTo(orgId, email)),
    db
      .select({ n: sql<number>`count(*)::int` })
      .from(messages)
      .where(waitingFor(orgId, userId, email)),
    db
      .select({ n: sql<number>`count(*)::int` })
      .from(webhookDeliveries)
      .where(deliveriesNaming(orgId, email)),
    db
      .select({ n: sql<number>`count(*)::int` })
      .from(notices)
      .where(noticesNaming(orgId, userId, email)),
    db
      .select({ n: sql<number>`count(*)::int` })
      .from(notificationOutbox)
      .where(notificationEmailsNaming(orgId, email)),
  ]);
  return {
    mailboxes: mailboxRows[0]?.n ?? 0,
    apiKeys: keyRows[0]?.n ?? 0,
    messagesSent: sent[0]?.n ?? 0,
    messagesAddressed: addressed[0]?.n ?? 0,
    auditEvents: events[0]?.n ?? 0,
    invitations: invites[0]?.n ?? 0,
    queuedMessages: queued[0]?.n ?? 0,
    webhookDeliveries: deliveries[0]?.n ?? 0,
    notices: noticeRows[0]?.n ?? 0,
    notificationEmails: emails[0]?.n ?? 0,
  };
}

export async function countAccountRows({ db, userId }: { db: DbOrTx; userId: string }) {
  const [s, a, m] = await Promise.all([
    count(db, sql`select count(*)::int as n from sessions where user_id = ${userId}`),
    count(db, sql`select count(*)::int as n from accounts where user_id = ${userId}`),
    count(db, sql`select count(*)::int as n from memberships where user_id = ${userId}`),
  ]);
  return { sessions: s, accounts: a, memberships: m };
}

// ---- Erasure ----

export async function listSubjectMailboxIds({
  db,
  orgId,
  userId,
  email,
}: {
  db: DbOrTx;
  orgId: string;
  userId: string | null;
  email: string;
}) {
  const rows = await db
    .select({ id: mailboxes.id })
    .from(mailboxes)
    .where(mailboxesOf(orgId, userId, email));
  return rows.map((r) => r.id);
}

export async function deleteSubjectMailboxes({
  db,
  orgId,
  userId,
  email,
}: {
  db: DbOrTx;
  orgId: string;
  userId: string | null;
  email: string;
}) {
  return deleteCounted(db, mailboxes, mailboxesOf(orgId, userId, email));
}

export async function deleteSubjectApiKeys({
  db,
  orgId,
  userId,
}: {
  db: DbOrTx;
  orgId: string;
  userId: string;
}) {
  return deleteCounted(db, apiKeys, and(eq(apiKeys.orgId, orgId), eq(apiKeys.createdBy, userId)));
}

export async function deleteSubjectInvitations({
  db,
  orgId,
  email,
}: {
  db: DbOrTx;
  orgId: string;
  email: string;
}) {
  return deleteCounted(db, invitations, invitationsTo(orgId, email));
}

/** Notices of the organisation that name the address (a mailbox problem, say). */
export async function deleteNoticesNaming({
  db,
  orgId,
  userId,
  email,
}: {
  db: DbOrTx;
  orgId: string;
  userId: string | null;
  email: string;
}) {
  return deleteCounted(db, notices, noticesNaming(orgId, userId, email));
}

/** Deletes the organisation's notification emails, sent or not, to or naming the address. */
export async function deleteNotificationEmailsNaming({
  db,
  orgId,
  email,
}: {
  db: DbOrTx;
  orgId: string;
  email: string;
}) {
  return deleteCounted(db, notificationOutbox, notificationEmailsNaming(orgId, email));
}

/**
 * Cancels the organisation's queued messages addressed to the person, from their mailboxes or
 * sent with their API keys, and deletes their sealed bodies: nothing goes to them, or out in
 * their name, after the erasure. Runs before their mailboxes and keys are deleted. A message
 * being sent right now finishes; its row loses the address with the others.
 */
export async function cancelWaitingMessagesOf({
  db,
  orgId,
  userId,
  email,
}: {
  db: DbOrTx;
  orgId: string;
  userId: string | null;
  email: string;
}) {
  const rows = await db
    .update(messages)
    .set({
      status: "cancelled",
      nextAttemptAt: null,
      bodySealed: null,
      lastError: "Cancelled: the personal data of its recipient or sender was erased.",
    })
    .where(waitingFor(orgId, userId, email))
    .returning({ id: messages.id });
  return rows.length;
}

/** Deletes the organisation's webhook deliveries, sent or not, whose body names the address. */
export async function deleteWebhookDeliveriesNaming({
  db,
  orgId,
  email,
}: {
  db: DbOrTx;
  orgId: string;
  email: string;
}) {
  return deleteCounted(db, webhookDeliveries, deliveriesNaming(orgId, email));
}

/**
 * Removes the person's entries from the recipients of the organisation's kept messages, and
 * replaces the address (and name) wherever a subject, SMTP reply or failure cause repeats it (a
 * cancel names the member who cancelled, a failure the mailbox).
 */
export async function removeRecipientFromMessages({
  db,
  orgId,
  email,
  name,
  pseudonym,
}: {
  db: DbOrTx;
  orgId: string;
  email: string;
  name: string | null;
  pseudonym: string;
}) {
  const keep = (field: string) =>
    sql`coalesce((select jsonb_agg(r.entry) from jsonb_array_elements_text(coalesce(${messages.recipients}->${field}, '[]')) as r(entry) where not ${namesAddress(sql`r.entry`, email)}), '[]'::jsonb)`;
  const rows = await db
    .update(messages)
    .set({
      recipients: sql`jsonb_build_object('to', ${keep("to")}, 'cc', ${keep("cc")}, 'bcc', ${keep("bcc")})`,
    })
    .where(and(eq(messages.orgId, orgId), isRecipient(email)))
    .returning({ id: messages.id });
  const pattern = personPattern(email, name);
  const rewrite = (column: string) => replaceMatches(sql.raw(column), pattern, pseudonym);
  const names = (column: string) => matchesPattern(sql.raw(column), pattern);
  const rewritten = await db.execute(sql`
    update messages set
      subject = ${rewrite("subject")},
      smtp_response = ${rewrite("smtp_response")},
      last_error = ${rewrite("last_error")}
    where org_id = ${orgId}
      and (${names("subject")} or ${names("smtp_response")} or ${names("last_error")})
    returning id`);
  return {
    recipientRows: rows.length,
    rewrittenRows: (rewritten as unknown as { rows: unknown[] }).rows.length,
  };
}

export async function deleteAccountIfNoMembership({ db, userId }: { db: DbOrTx; userId: string }) {
  const rows = await db
    .delete(users)
    .where(
      and(
        eq(users.id, userId),
        sql`not exists (select 1 from ${memberships} where ${memberships.userId} = ${userId})`,
      ),
    )
    .returning({ id: users.id });
  return rows.length > 0;
}

// ---- Requests ----

export async function insertDataRequest({
  db,
  values,
}: {
  db: DbOrTx;
  values: typeof dataRequests.$inferInsert;
}) {
  const [row] = await db.insert(dataRequests).values(values).returning();
  if (!row) throw new Error("data request insert returned no row");
  return row;
}

export async function getDataRequest({
  db,
  orgId,
  requestId,
}: {
  db: DbOrTx;
  orgId: string;
  requestId: string;
}) {
  const [row] = await db
    .select()
    .from(dataRequests)
    .where(and(eq(dataRequests.orgId, orgId), eq(dataRequests.id, requestId)));
  return row ?? null;
}

/** Locked, so that two clicks cannot carry out one request twice. */
export async function lockOpenDataRequest({
  db,
  orgId,
  requestId,
}: {
  db: DbOrTx;
  orgId: string;
  requestId: string;
}) {
  const [row] = await db
    .select()
    .from(dataRequests)
    .where(
      and(
        eq(dataRequests.orgId, orgId),
        eq(dataRequests.id, requestId),
        eq(dataRequests.status, "open"),
      ),
    )
    .for("update");
  return row ?? null;
}

const dataRequestPageKeys: PageKeys = { at: dataRequests.receivedAt, id: dataRequests.id };

/** One page of the organisation's requests, latest received first (data_requests_org_received_idx). */
export async function listDataRequests({
  db,
  orgId,
  page = FIRST_PAGE,
}: {
  db: DbOrTx;
  orgId: string;
  page?: PageRequest;
}) {
  return readKeysetPage({
    keys: dataRequestPageKeys,
    request: page,
    read: (position, order, limit) =>
      db
        .select({
          id: dataRequests.id,
          kind: dataRequests.kind,
          subjectEmail: dataRequests.subjectEmail,
          requestedBy: users.email,
          receivedAt: dataRequests.receivedAt,
          dueAt: dataRequests.dueAt,
          status: dataRequests.status,
          completedAt: dataRequests.completedAt,
          hasReceipt: sql<boolean>`${dataRequests.receipt} is not null`,
          ...pageKeyColumns(dataRequestPageKeys),
        })
        .from(dataRequests)
        // Named only while a member (see listRecentMessages): an erased officer's account may live on.
        .leftJoin(
          memberships,
          and(eq(memberships.orgId, orgId), eq(memberships.userId, dataRequests.requestedBy)),
        )
        .leftJoin(users, eq(users.id, memberships.userId))
        .where(and(eq(dataRequests.orgId, orgId), position))
        .orderBy(...order)
        .limit(limit),
  });
}

export async function countOverdueDataRequests({ db, orgId }: { db: DbOrTx; orgId: string }) {
  const [row] = await db
    .select({ n: sql<number>`count(*)::int` })
    .from(dataRequests)
    .where(
      and(
        eq(dataRequests.orgId, orgId),
        eq(dataRequests.status, "open"),
        sql`${dataRequests.dueAt} < now()`,
      ),
    );
  return row?.n ?? 0;
}

export async function completeDataRequest({
  db,
  orgId,
  requestId,
  completedBy,
  status = "completed",
  receipt,
}: {
  db: DbOrTx;
  orgId: string;
  requestId: string;
  completedBy: string;
  status?: "completed" | "refused";
  receipt: Record<string, unknown> | null;
}) {
  await db
    .update(dataRequests)
    .set({ status, completedAt: new Date(), completedBy, receipt })
    .where(and(eq(dataRequests.orgId, orgId), eq(dataRequests.id, requestId)));
}

export async function setDataRequestReceipt({
  db,
  orgId,
  requestId,
  receipt,
}: {
  db: DbOrTx;
  orgId: string;
  requestId: string;
  receipt: Record<string, unknown>;
}) {
  await db
    .update(dataRequests)
    .set({ receipt })
    .where(and(eq(dataRequests.orgId, orgId), eq(dataRequests.id, requestId)));
}

/** Every request of the organisation about the address now names the pseudonym instead. */
/** Items of the organisation's jobs labelled with the address (a mailbox the revoke-all job took). */
function jobItemsNaming(orgId: string, email: string) {
  return sql`lower(${jobItems.label}) = ${email} and ${jobItems.jobId} in (select ${jobs.id} from ${jobs} where ${jobs.orgId} = ${orgId})`;
}

/** The incident jobs' items that name the address (the export's `jobItems`). */
export async function listJobItemsNaming({
  db,
  orgId,
  email,
}: {
  db: DbOrTx;
  orgId: string;
  email: string;
}) {
  return db
    .select({
      jobId: jobItems.jobId,
      kind: jobs.kind,
      result: jobItems.result,
      finishedAt: jobItems.finishedAt,
    })
    .from(jobItems)
    .innerJoin(jobs, eq(jobs.id, jobItems.jobId))
    .where(jobItemsNaming(orgId, email))
    .orderBy(asc(jobItems.finishedAt));
}

/** The address becomes the pseudonym in the labels of the organisation's job items. */
export async function pseudonymizeJobItems({
  db,
  orgId,
  email,
  pseudonym,
}: {
  db: DbOrTx;
  orgId: string;
  email: string;
  pseudonym: string;
}) {
  await db.update(jobItems).set({ label: pseudonym }).where(jobItemsNaming(orgId, email));
}

export async function pseudonymizeDataRequests({
  db,
  orgId,
  email,
  pseudonym,
}: {
  db: DbOrTx;
  orgId: string;
  email: string;
  pseudonym: string;
}) {
  await db.execute(sql`
    update data_requests set
      subject_email = case when lower(subject_email) = ${email} then ${pseudonym} else subject_email end,
      receipt = case when receipt is null then null
        else ${replaceMatches(sql`receipt::text`, wholeAddressPattern(email), pseudonym)}::jsonb end
    where org_id = ${orgId}
      and (lower(subject_email) = ${email} or ${mentionsAddress(sql`receipt::text`, email)})`);
}
