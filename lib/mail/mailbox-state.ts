import "server-only";
import { getMailProvider } from "@/lib/oauth/providers";
import type { Mailbox } from "./delivery";
import type { RefusalOutcome } from "./outcomes";
import { limitRefusal } from "./quota";
import { ADMIN_ACTION_INSTRUCTIONS } from "./smtp-replies";

// What a mailbox's state means for a send or a connection test: the refusal a caller reads, in
// the words of the state it is in.

function mailboxRefusal(mailbox: Mailbox): RefusalOutcome | null {
  switch (mailbox.status) {
    case "connected":
      return null;
    case "paused":
      return {
        kind: "paused",
        scope: "mailbox",
        cause: "This mailbox is paused by an administrator; nothing is sent from it until resumed.",
      };
    case "needs_reconnect":
      return {
        kind: "conflict",
        mailboxStatus: mailbox.status,
        cause:
          mailbox.lastErrorCause ??
          "The mailbox's grant no longer works. An owner or admin must reconnect the mailbox.",
      };
    case "admin_action_required":
      return {
        kind: "conflict",
        mailboxStatus: mailbox.status,
        cause: mailbox.lastErrorCause ?? ADMIN_ACTION_INSTRUCTIONS,
      };
    case "revoked":
      return {
        kind: "conflict",
        mailboxStatus: mailbox.status,
        cause: "This mailbox was disconnected. Connect it again to send from it.",
      };
  }
}

/** Why nothing can be sent from this mailbox now, or null when it can. */
export function unusableMailbox(mailbox: Mailbox): RefusalOutcome | null {
  const refusal = mailboxRefusal(mailbox);
  if (refusal) return refusal;
  if (!getMailProvider(mailbox.provider)) {
    return {
      kind: "conflict",
      mailboxStatus: mailbox.status,
      cause: `The mail provider "${mailbox.provider}" is not configured on this deployment.`,
    };
  }
  return null;
}

/**
 * Why no message can be sent from this mailbox now: its state, or its provider's daily limit
 * (a connection test is still allowed then: the grant works).
 */
export function refusalToSend(mailbox: Mailbox): RefusalOutcome | null {
  return unusableMailbox(mailbox) ?? limitRefusal(mailbox);
}
