import "server-only";
import { getDb, inTransaction } from "@/db";
import { getMailboxForOrg } from "@/db/queries/mailboxes";
import { getNotificationMailbox, setNotificationMailbox } from "@/db/queries/notifications";
import { writeAuditEvent } from "@/lib/audit/write";
import type { MemberContext } from "@/lib/auth/context";
import { UserFacingError } from "@/lib/errors";

export class NotificationSenderError extends UserFacingError {
  constructor(message: string) {
    super(message, { field: "mailboxId" });
    this.name = "NotificationSenderError";
  }
}

/**
 * Chooses the mailbox notification emails are sent from (null: dashboard notices only). It
 * must be a connected mailbox of the caller's organisation. The caller's permission is checked
 * by the action wrapper.
 */
export async function chooseNotificationSender(ctx: MemberContext, mailboxId: string | null) {
  const db = await getDb();
  await inTransaction(db, async (tx) => {
    if (mailboxId !== null) {
      const mailbox = await getMailboxForOrg({ db: tx, orgId: ctx.orgId, mailboxId });
      if (!mailbox)
        throw new NotificationSenderError("Choose one of this organisation's mailboxes.");
      if (mailbox.status !== "connected") {
        throw new NotificationSenderError("Choose a connected mailbox: this one cannot send now.");
      }
    }
    const previous = await getNotificationMailbox({ db: tx, orgId: ctx.orgId });
    await setNotificationMailbox({ db: tx, orgId: ctx.orgId, mailboxId });
    await writeAuditEvent(tx, {
      orgId: ctx.orgId,
      actor: ctx.actor,
      action: "settings.notifications_changed",
      target: { type: "organization", id: ctx.orgId },
      outcome: "success",
      request: ctx.request,
      metadata: { from: previous?.id ?? null, to: mailboxId },
    });
  });
}
