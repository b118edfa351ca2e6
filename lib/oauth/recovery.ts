import "server-only";
import { getDb } from "@/db";
import { lockMailboxWithTokens, updateMailbox } from "@/db/queries/mailboxes";
import type { Actor, RequestInfo } from "@/lib/audit/events";
import { writeAuditEvent } from "@/lib/audit/write";
import { notifyMailboxProblem } from "./notify";
import { getMailProvider } from "./providers";

/**
 * An administrator's "Retry now" passed the connection test: a mailbox that was waiting for an
 * administrator is connected again, audited as the person who retried, and everyone who was
 * told of the problem is told it is over. Nothing happens when its state changed meanwhile.
 */
export async function markMailboxRecovered(
  mailboxId: string,
  by: { actor: Actor; request: RequestInfo },
): Promise<boolean> {
  const db = await getDb();
  const notification = await db.transaction(async (tx) => {
    const row = await lockMailboxWithTokens({ db: tx, mailboxId });
    if (row?.status !== "admin_action_required") return null;
    await updateMailbox({
      db: tx,
      mailboxId,
      set: { status: "connected", lastErrorCode: null, lastErrorCause: null, failureCount: 0 },
    });
    await writeAuditEvent(tx, {
      orgId: row.orgId,
      actor: by.actor,
      action: "mailbox.recovered",
      target: { type: "mailbox", id: mailboxId },
      outcome: "success",
      request: by.request,
      metadata: { provider: row.provider, previousStatus: row.status, via: "retry" },
    });
    return notifyMailboxProblem(tx, {
      kind: "mailbox_recovered",
      orgId: row.orgId,
      mailboxId,
      address: row.address,
      providerLabel: getMailProvider(row.provider)?.label ?? row.provider,
      connectedBy: row.connectedBy,
    });
  });
  await notification?.deliver();
  return notification !== null;
}
