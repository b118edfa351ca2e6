import "server-only";
import type { Database } from "@/db";
import { isAccountInUseElsewhere, recordGrantRevoked } from "@/db/queries/mailboxes";
import type { OAuthTransaction } from "@/db/schema";
import type { IssuedTokens } from "./grant-exchange";
import type { MailProvider } from "./providers";
import { revokeToken } from "./token-endpoint";
import type { Withdrawal } from "./withdrawal-words";

/** The refresh token stands for the whole grant. */
function revokeIssued(provider: MailProvider, tokens: IssuedTokens) {
  return tokens.refreshToken
    ? revokeToken(provider, tokens.refreshToken, "refresh_token")
    : revokeToken(provider, tokens.accessToken, "access_token");
}

/**
 * Revokes tokens the provider just issued but that are not stored, so none is left alive.
 * Microsoft has no revocation endpoint: the consent stays there until the account removes it.
 * Where revoking ends every grant of the account (Google), it is decided as a revoke decides it,
 * under the account's lock: a grant another mailbox row of the account (in any organisation)
 * still holds a token of is left alone (`kept_in_use`), as is one whose account the ID token did
 * not fully name; a revocation is recorded for the transaction before the lock is released, so
 * that a connect of the account redeemed meanwhile is refused instead of stored with a grant
 * this ended.
 */
export async function withdrawGrant(
  db: Database,
  provider: MailProvider,
  transaction: Pick<OAuthTransaction, "id">,
  tokens: IssuedTokens,
  account: { subject?: string; address?: string },
): Promise<Withdrawal> {
  if (!provider.revocationEndpoint) return "not_supported";
  if (!provider.revocationEndsAccountGrants) {
    return (await revokeIssued(provider, tokens)).ok ? "revoked" : "failed";
  }
  const { subject, address } = account;
  if (!subject || !address) return "kept_in_use";
  const mailbox = { provider: provider.id, providerSubject: subject, address };
  return db.transaction(async (tx) => {
    if (await isAccountInUseElsewhere({ db: tx, mailbox })) return "kept_in_use";
    const answer = await revokeIssued(provider, tokens);
    // Unanswered, the request may still have arrived and ended the account's grants.
    if (answer.ok || answer.status === null) {
      await recordGrantRevoked({ db: tx, transactionId: transaction.id, subject });
    }
    return answer.ok ? "revoked" : "failed";
  });
}
