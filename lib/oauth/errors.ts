import type { MailboxStatus } from "@/db/schema";

// Domain errors of the token lifecycle; lib/mail maps them to HTTP problems and form messages.

/** The mailbox cannot be used until a person acts (status and plain-language cause say why). */
export class MailboxUnavailableError extends Error {
  constructor(
    readonly mailboxId: string,
    readonly status: MailboxStatus,
    readonly cause: string,
  ) {
    super(cause);
    this.name = "MailboxUnavailableError";
  }
}

/** A refresh failed permanently (invalid_grant, AADSTS 65001/70008/700082/50173/50076/50079). */
export class MailboxNeedsReconnectError extends MailboxUnavailableError {
  constructor(mailboxId: string, cause: string, readonly code: string) {
    super(mailboxId, "needs_reconnect", cause);
    this.name = "MailboxNeedsReconnectError";
  }
}

/** A refresh failed for now (5xx, timeout, network); the mailbox keeps its status. */
export class TokenRefreshTransientError extends Error {
  constructor(
    readonly mailboxId: string,
    readonly code: string,
    readonly retryAt: Date,
  ) {
    super(`The provider's token endpoint is not answering (${code}); retrying after ${retryAt.toISOString()}.`);
    this.name = "TokenRefreshTransientError";
  }
}
