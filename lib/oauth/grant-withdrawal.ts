import "server-only";
import type { Database } from "@/db";
import { isSubjectConnectedAnywhere } from "@/db/queries/mailboxes";
import type { IssuedTokens } from "./grant-exchange";
import type { MailProvider } from "./providers";
import { revokeToken } from "./token-endpoint";
import type { Withdrawal } from "./withdrawal-words";

/**
 * Revokes tokens the provider just issued but that are not stored, so none is left alive. The
 * refresh token stands for the whole grant. Microsoft has no revocation endpoint: the consent
 * stays there until the account removes it. Where revoking ends every grant of the account
 * (Google), a grant that a connected mailbox relies on is left alone.
 */
export async function withdrawGrant(
  db: Database,
  provider: MailProvider,
  tokens: IssuedTokens,
  subject: string | null,
): Promise<Withdrawal> {
  if (!provider.revocationEndpoint) return "not_supported";
  if (
    provider.revocationEndsAccountGrants &&
    (subject === null || (await isSubjectConnectedAnywhere({ db, provider: provider.id, subject })))
  ) {
    return "kept_in_use";
  }
  const answer = tokens.refreshToken
    ? await revokeToken(provider, tokens.refreshToken, "refresh_token")
    : await revokeToken(provider, tokens.accessToken, "access_token");
  return answer.ok ? "revoked" : "failed";
}
