import type { MailboxStatus } from "@/db/schema";
import { UserFacingError } from "@/lib/errors";

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
  constructor(
    mailboxId: string,
    cause: string,
    readonly code: string,
  ) {
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
    super(
      `The provider's token endpoint is not answering (${code}); retrying after ${retryAt.toISOString()}.`,
    );
    this.name = "TokenRefreshTransientError";
  }
}

/** No such mailbox (in this organisation): map to 404, never to 403, so ids are not probed. */
export class MailboxNotFoundError extends UserFacingError {
  constructor(readonly mailboxId: string) {
    super("No such mailbox in this organisation.");
    this.name = "MailboxNotFoundError";
  }
}

/** The provider is unknown or has no credentials in this deployment. */
export class ProviderNotConfiguredError extends UserFacingError {
  constructor(readonly providerId: string) {
    super(`The mail provider "${providerId}" is not configured here.`);
    this.name = "ProviderNotConfiguredError";
  }
}
