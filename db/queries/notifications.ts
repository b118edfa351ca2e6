import "server-only";
import { and, asc, eq, inArray, isNull, lte, sql } from "drizzle-orm";
import type { DbOrTx } from "@/db";
import {
  mailboxes,
  memberships,
  notificationOutbox,
  organizationSettings,
  users,
} from "@/db/schema";

// Notification emails: the organisation's chosen sender mailbox and the outbox of events
// waiting to be sent as one digest per recipient.

export type OutboxEvent = { kind: string; title: string; body: string };

/** The sender mailbox, only while it still belongs to the organisation. */
export async function getNotificationMailbox({ db, orgId }: { db: DbOrTx; orgId: string }) {
  const [row] = await db
    .select({ id: mailboxes.id, address: mailboxes.address, status: mailboxes.status })
    .from(organizationSettings)
    .innerJoin(
      mailboxes,
      and(
        eq(mailboxes.id, organizationSettings.notificationMailboxId),
        eq(mailboxes.orgId, organizationSettings.orgId),
      ),
    )
    .where(eq(organizationSettings.orgId, orgId));
  return row ?? null;
}

export async function setNotificationMailbox({
  db,
  orgId,
  mailboxId,
}: {
  db: DbOrTx;
  orgId: string;
  mailboxId: string | null;
}) {
  await db
    .insert(organizationSettings)
    .values({ orgId, notificationMailboxId: mailboxId, updatedAt: new Date() })
    .onConflictDoUpdate({
      target: organizationSettings.orgId,
      set: { notificationMailboxId: mailboxId, updatedAt: new Date() },
    });
}

/** The owners' and admins' addresses: who hears about every event. */
export async function listAdminEmails({ db, orgId }: { db: DbOrTx; orgId: string }) {
  const rows = await db
    .select({ email: users.email })
    .from(memberships)
    .innerJoin(users, eq(users.id, memberships.userId))
    .where(and(eq(memberships.orgId, orgId), inArray(memberships.role, ["owner", "admin"])));
  return rows.flatMap((r) => (r.email ? [r.email] : []));
}

export async function insertOutboxRows({
  db,
  orgId,
  recipients,
  event,
}: {
  db: DbOrTx;
  orgId: string;
  recipients: string[];
  event: OutboxEvent;
}) {
  if (recipients.length === 0) return;
  await db
    .insert(notificationOutbox)
    .values(recipients.map((recipient) => ({ orgId, recipient, event })));
}

/**
 * Claims every pending row of each (organisation, recipient) whose oldest pending row was
 * written at or before `due`: one statement, so a row is claimed by one flusher only.
 */
export async function claimDueOutboxRows({ db, due }: { db: DbOrTx; due: Date }) {
  const dueGroups = db
    .select({ orgId: notificationOutbox.orgId, recipient: notificationOutbox.recipient })
    .from(notificationOutbox)
    .where(isNull(notificationOutbox.sentAt))
    .groupBy(notificationOutbox.orgId, notificationOutbox.recipient)
    .having(lte(sql`min(${notificationOutbox.createdAt})`, due));
  return db
    .update(notificationOutbox)
    .set({ sentAt: new Date(), outcome: "sending" })
    .where(
      and(
        isNull(notificationOutbox.sentAt),
        sql`(${notificationOutbox.orgId}, ${notificationOutbox.recipient}) in ${dueGroups}`,
      ),
    )
    .returning({
      id: notificationOutbox.id,
      orgId: notificationOutbox.orgId,
      recipient: notificationOutbox.recipient,
      event: notificationOutbox.event,
      createdAt: notificationOutbox.createdAt,
    });
}

export async function settleOutboxRows({
  db,
  ids,
  outcome,
}: {
  db: DbOrTx;
  ids: string[];
  outcome: string;
}) {
  if (ids.length === 0) return;
  await db.update(notificationOutbox).set({ outcome }).where(inArray(notificationOutbox.id, ids));
}

export async function listOutboxForOrg({ db, orgId }: { db: DbOrTx; orgId: string }) {
  return db
    .select()
    .from(notificationOutbox)
    .where(eq(notificationOutbox.orgId, orgId))
    .orderBy(asc(notificationOutbox.createdAt));
}
