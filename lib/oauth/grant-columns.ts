import "server-only";
import type { MailboxUpdate } from "@/db/queries/mailboxes";
import { currentKeyId, sealMailboxToken } from "./sealed";

// The one place that decides which columns of a mailbox row hold its grant and which of them
// change together. A grant arriving (connect) or renewed (refresh) goes through sealGrant; a
// grant that dies (invalid grant, revoke) is wiped with CLEARED_TOKENS. Nothing else writes
// these columns, so the lifecycle paths cannot drift apart on what a dead grant leaves behind.
// grant-columns.test.ts reads the row after each transition.

/** What the provider's token endpoint handed over, from a code exchange or a refresh. */
export type GrantTokens = {
  accessToken: string;
  expiresAt: Date;
  /**
   * Absent or null when the provider sent none: the refresh token held stays (Google sends one
   * only on the first consent; a refresh need not rotate it).
   */
  refreshToken?: string | null;
  /** Absent or null when the provider did not say: the scopes recorded stay. */
  scopes?: string[] | null;
};

/** The grant sealed into its columns, ready for updateMailbox or insertMailbox. */
export function sealGrant(mailboxId: string, grant: GrantTokens) {
  return {
    accessTokenEnc: sealMailboxToken(mailboxId, "access_token", grant.accessToken),
    accessTokenExpiresAt: grant.expiresAt,
    // RFC 6749 §6: a new refresh token replaces the old one, which may already be dead.
    ...(grant.refreshToken
      ? { refreshTokenEnc: sealMailboxToken(mailboxId, "refresh_token", grant.refreshToken) }
      : {}),
    ...(grant.scopes ? { grantedScopes: grant.scopes } : {}),
    // The key of the newest value; every ciphertext also names its own key, which is what
    // decryption and re-encryption go by.
    keyId: currentKeyId(),
    lastRefreshAt: new Date(),
  } satisfies MailboxUpdate;
}

/**
 * A dead grant: no token of it stays readable here, and no key id claims the row still holds
 * something sealed. The granted scopes stay as the record of what had been granted.
 */
export const CLEARED_TOKENS = {
  accessTokenEnc: null,
  accessTokenExpiresAt: null,
  refreshTokenEnc: null,
  keyId: null,
} as const satisfies MailboxUpdate;
