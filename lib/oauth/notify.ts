import "server-only";
import { randomUUID } from "node:crypto";
import path from "node:path";
import type { DbOrTx } from "@/db";
import { insertNotices, listMailboxNoticeRecipients } from "@/db/queries/mailboxes";
import { demoInboxDir } from "@/lib/demo";
import { writePrivateFile } from "@/lib/demo/files";
import type { StoredMessage } from "@/lib/demo/inbox";
import { env } from "@/lib/env";
import { queueNotification } from "@/lib/notifications";
import { emitWebhookEvent } from "@/lib/webhooks/emit";
import type { WebhookEventType } from "@/lib/webhooks/event-types";

// Telling people about a mailbox: a dashboard notice for the person who connected it and for
// each owner and admin of the organisation, and an email. The email goes through the
// organisation's notification mailbox when it chose one (queued with the notices, sent as a
// digest by lib/notifications). Without one, demo mode still drops it straight into the demo
// inbox, and elsewhere the dashboard notice is all there is. The organisation's webhook endpoints
// hear of it too (mailbox.needs_reconnect, mailbox.admin_action_required, mailbox.recovered):
// every change of a mailbox's status that people are told of passes here, in its transaction.

export type MailboxNoticeKind =
  | "mailbox_needs_reconnect"
  | "mailbox_admin_action_required"
  | "mailbox_recovered";

export type MailboxNoticeInput = {
  kind: MailboxNoticeKind;
  orgId: string;
  mailboxId: string;
  address: string;
  providerLabel: string;
  connectedBy: string | null;
  /** Plain-language cause (for problems). */
  cause?: string | null;
};

export type MailboxNotification = {
  recipients: string[];
  title: string;
  body: string;
  /** Sends the email; call it after the transaction that recorded the notices has committed. */
  deliver(): Promise<void>;
};

const WEBHOOK_TYPE = {
  mailbox_needs_reconnect: "mailbox.needs_reconnect",
  mailbox_admin_action_required: "mailbox.admin_action_required",
  mailbox_recovered: "mailbox.recovered",
} as const satisfies Record<MailboxNoticeKind, WebhookEventType>;

const MAILBOX_STATUS = {
  mailbox_needs_reconnect: "needs_reconnect",
  mailbox_admin_action_required: "admin_action_required",
  mailbox_recovered: "connected",
} as const satisfies Record<MailboxNoticeKind, string>;

function wording(input: MailboxNoticeInput): { title: string; body: string } {
  const what = `${input.address} (${input.providerLabel})`;
  switch (input.kind) {
    case "mailbox_needs_reconnect":
      return {
        title: `Reconnect the mailbox ${input.address}`,
        body: `Mailwarden can no longer send from ${what}. ${input.cause ?? ""} Until it is reconnected, messages from this mailbox are refused.`.trim(),
      };
    case "mailbox_admin_action_required":
      return {
        title: `An administrator must act for ${input.address}`,
        body: `The provider refused to let Mailwarden send from ${what}. ${input.cause ?? ""} Reconnecting will not help until this is fixed.`.trim(),
      };
    case "mailbox_recovered":
      return {
        title: `The mailbox ${input.address} is connected again`,
        body: `${what} works again: Mailwarden can send from it.`,
      };
  }
}

/**
 * Records the notices with `db` (use the transaction of the status change) and returns the
 * email to deliver once that transaction has committed.
 */
export async function notifyMailboxProblem(
  db: DbOrTx,
  input: MailboxNoticeInput,
): Promise<MailboxNotification> {
  const recipients = await listMailboxNoticeRecipients({
    db,
    orgId: input.orgId,
    connectedBy: input.connectedBy,
  });
  const { title, body } = wording(input);
  await insertNotices({
    db,
    values: recipients.map((r) => ({
      orgId: input.orgId,
      userId: r.userId,
      mailboxId: input.mailboxId,
      kind: input.kind,
      title,
      body,
    })),
  });
  const emails = [...new Set(recipients.flatMap((r) => (r.email ? [r.email] : [])))];
  // The same change for the organisation's webhook endpoints, in the same transaction.
  const webhooks = await emitWebhookEvent(db, {
    orgId: input.orgId,
    type: WEBHOOK_TYPE[input.kind],
    data: {
      mailboxId: input.mailboxId,
      mailbox: input.address,
      status: MAILBOX_STATUS[input.kind],
      ...(input.cause ? { cause: input.cause } : {}),
    },
  });
  const queued = await queueNotification(db, {
    orgId: input.orgId,
    kind: input.kind,
    title,
    body,
    alsoTo: emails,
  });
  return {
    recipients: emails,
    title,
    body,
    deliver: async () => {
      await webhooks.dispatch();
      if (queued || emails.length === 0 || !env().isDemo) return;
      try {
        await dropIntoDemoInbox(emails, title, body);
      } catch (error) {
        // The notice is recorded; a failed demo email must not undo or hide the status change.
        console.error(`[mailwarden] demo notification email not written: ${(error as Error).name}`);
      }
    },
  };
}

const FROM = "notifications@mailwarden.localhost";

// Header values are built here, from an address the provider verified and our own text; still,
// nothing that could end a header line gets through.
function headerSafe(value: string): string {
  return value.replace(/[\p{Cc}\u2028\u2029]+/gu, " ").slice(0, 900);
}

/** The demo inbox's storage format (lib/demo/inbox.ts): one JSON file per message. */
async function dropIntoDemoInbox(to: string[], subject: string, text: string): Promise<void> {
  const receivedAt = new Date();
  const id = `${receivedAt.getTime().toString().padStart(15, "0")}-${randomUUID()}`;
  const raw = [
    `From: Mailwarden <${FROM}>`,
    `To: ${headerSafe(to.join(", "))}`,
    `Subject: ${headerSafe(subject)}`,
    `Date: ${receivedAt.toUTCString()}`,
    `Message-ID: <${id}@mailwarden.localhost>`,
    "MIME-Version: 1.0",
    "Content-Type: text/plain; charset=utf-8",
    "Content-Transfer-Encoding: 8bit",
    "",
    text,
    "",
  ].join("\r\n");
  const stored: StoredMessage = {
    id,
    receivedAt: receivedAt.toISOString(),
    authUser: FROM,
    envelope: { from: FROM, to },
    raw,
  };
  const dir = demoInboxDir(env().dataDir);
  await writePrivateFile(path.join(dir, `${id}.json`), JSON.stringify(stored));
}
