import "server-only";
import { sql } from "drizzle-orm";
import { type DbOrTx, getDb, inTransaction, openedDb } from "@/db";
import {
  claimDueOutboxRows,
  getNotificationMailbox,
  insertOutboxRows,
  listAdminEmails,
  type OutboxEvent,
  settleOutboxRows,
} from "@/db/queries/notifications";
import type { SystemContext } from "@/lib/auth/context";
import { env } from "@/lib/env";
import { sendMessage } from "@/lib/mail/send";

// Notification emails. An event is written to the outbox in the transaction of the change it
// reports, one row per recipient, and only when the organisation chose a sender mailbox;
// otherwise the dashboard notices are all there is. The flusher sends each recipient's pending
// events as one digest through the send chokepoint as the system actor, so a pause stops
// notifications too and each one is audited like any message.

export type NotificationInput = {
  orgId: string;
  kind: string;
  title: string;
  body: string;
  /** Besides the owners and admins (e.g. the person who connected a broken mailbox). */
  alsoTo?: string[];
};

/** Queues the event for the owners and admins (and `alsoTo`); false without a sender mailbox. */
export async function queueNotification(db: DbOrTx, input: NotificationInput): Promise<boolean> {
  const sender = await getNotificationMailbox({ db, orgId: input.orgId });
  if (!sender) return false;
  const admins = await listAdminEmails({ db, orgId: input.orgId });
  const recipients = [...new Set([...admins, ...(input.alsoTo ?? [])].map((e) => e.toLowerCase()))];
  await insertOutboxRows({
    db,
    orgId: input.orgId,
    recipients,
    event: { kind: input.kind, title: input.title, body: input.body },
  });
  scheduleFlush();
  return true;
}

function digest(events: OutboxEvent[]): { subject: string; text: string } {
  const [only] = events;
  if (events.length === 1 && only) {
    return { subject: only.title, text: `${only.body}\n\n— Mailwarden` };
  }
  const parts = events.map((e, i) => `${i + 1}. ${e.title}\n${e.body}`);
  return {
    subject: `Mailwarden: ${events.length} things happened in your organisation`,
    text: `${parts.join("\n\n")}\n\n— Mailwarden`,
  };
}

function systemContext(orgId: string): SystemContext {
  return {
    orgId,
    actor: { type: "system", label: "notifications" },
    role: null,
    request: { ip: null, userAgent: null },
    allowedMailboxIds: null,
  };
}

export type FlushResult = { recipient: string; orgId: string; events: number; outcome: string };

/**
 * Sends every recipient whose oldest pending event is at least `windowMs` old one digest of
 * all their pending events. One process at a time (an advisory lock); the claim is one
 * statement, so even without the lock no event is sent twice. A process that dies between the
 * claim and the send loses that digest rather than sending it twice.
 */
export async function flushNotifications({
  windowMs = env().NOTIFICATION_DIGEST_SECONDS * 1000,
  now = new Date(),
}: {
  windowMs?: number;
  now?: Date;
} = {}): Promise<FlushResult[] | null> {
  const db = await getDb();
  const claimed = await inTransaction(db, async (tx) => {
    const result = await tx.execute(
      sql`select pg_try_advisory_xact_lock(hashtextextended('notifications:flush', 0)) as locked`,
    );
    const locked = (result as unknown as { rows: { locked: boolean }[] }).rows[0]?.locked;
    if (!locked) return null;
    return claimDueOutboxRows({ db: tx, due: new Date(now.getTime() - windowMs) });
  });
  if (claimed === null) return null;

  const groups = new Map<string, typeof claimed>();
  for (const row of claimed) {
    const key = `${row.orgId}\u0000${row.recipient}`;
    groups.set(key, [...(groups.get(key) ?? []), row]);
  }
  const results: FlushResult[] = [];
  for (const rows of groups.values()) {
    const [first] = rows;
    if (!first) continue;
    const ids = rows.map((r) => r.id);
    const outcome = await sendDigest(db, first.orgId, first.recipient, rows).catch(
      (error: Error) => {
        console.error(`[mailwarden] notification digest not sent: ${error.name}`);
        return "error";
      },
    );
    await settleOutboxRows({ db, ids, outcome });
    results.push({ orgId: first.orgId, recipient: first.recipient, events: rows.length, outcome });
  }
  return results;
}

async function sendDigest(
  db: DbOrTx,
  orgId: string,
  recipient: string,
  rows: Array<{ event: OutboxEvent; createdAt: Date }>,
): Promise<string> {
  const sender = await getNotificationMailbox({ db, orgId });
  if (!sender) return "no_sender";
  const events = [...rows].sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime());
  const { subject, text } = digest(events.map((r) => r.event));
  const outcome = await sendMessage({
    ctx: systemContext(orgId),
    body: { type: "value", value: { mailbox: sender.id, to: [recipient], subject, text } },
    purpose: "notification",
  });
  return outcome.kind;
}

const holder = globalThis as typeof globalThis & {
  __mailwardenNotifyFlusher?: NodeJS.Timeout;
  __mailwardenNotifySoon?: NodeJS.Timeout;
};

/** After a queued event: a flush once its window has passed, in this process. */
function scheduleFlush() {
  if (holder.__mailwardenNotifySoon) return;
  const windowMs = env().NOTIFICATION_DIGEST_SECONDS * 1000;
  holder.__mailwardenNotifySoon = setTimeout(() => {
    holder.__mailwardenNotifySoon = undefined;
    runQuietly();
  }, windowMs + 1_000);
  holder.__mailwardenNotifySoon.unref();
}

function runQuietly() {
  openedDb()
    .then((db) => (db ? flushNotifications() : null))
    .catch((error: Error) => console.error(`[mailwarden] notifications: ${error.message}`));
}

/** Every process looks every 30 s for digests others left (the lock picks one). */
export function startNotificationFlusher() {
  if (holder.__mailwardenNotifyFlusher) return;
  holder.__mailwardenNotifyFlusher = setInterval(runQuietly, 30_000);
  holder.__mailwardenNotifyFlusher.unref();
}
