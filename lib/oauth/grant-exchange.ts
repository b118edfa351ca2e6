import "server-only";
import * as oidc from "openid-client";
import type { OAuthTransaction } from "@/db/schema";
import { clientConfiguration } from "./client";
import { type MailProvider, subjectFromClaims } from "./providers";
import { openCodeVerifier } from "./sealed";

// Redeeming the authorization code: the token request and what the ID token says the account is.

export type IssuedTokens = { accessToken: string; refreshToken: string | null };

export type Grant = IssuedTokens & {
  subject: string;
  address: string;
  tenant: string | null;
  scopes: string[];
  expiresAt: Date;
  /** When the code was sent to be redeemed: the tokens were issued no earlier. */
  requestedAt: Date;
};

/**
 * A code that could not become a grant. `issued`: tokens the provider handed out anyway, which
 * the caller withdraws; `subject` and `address`: the account they belong to, as far as the ID
 * token named it (so that a withdrawal where revoking ends every grant of the account can tell
 * whether a mailbox still relies on it).
 */
type ExchangeFailure = {
  error: string;
  issued?: IssuedTokens;
  subject?: string;
  address?: string;
};

export async function exchangeCode(
  provider: MailProvider,
  transaction: OAuthTransaction,
  callbackUrl: URL,
  iss: string | null,
): Promise<Grant | ExchangeFailure> {
  // The redirect URI sent to the token endpoint is the one recorded at the start, never one
  // rebuilt from the incoming request (proxies and hosts rewrite those).
  const currentUrl = new URL(transaction.redirectUri);
  for (const [name, value] of callbackUrl.searchParams) currentUrl.searchParams.append(name, value);
  // Checked above against the tenant-templated issuer, which openid-client would compare verbatim.
  if (iss !== null && iss !== provider.issuer) currentUrl.searchParams.delete("iss");

  let tokens: Awaited<ReturnType<typeof oidc.authorizationCodeGrant>>;
  const requestedAt = new Date();
  try {
    tokens = await oidc.authorizationCodeGrant(await clientConfiguration(provider), currentUrl, {
      pkceCodeVerifier: openCodeVerifier(transaction.id, transaction.codeVerifierEnc),
      expectedState: transaction.state,
      expectedNonce: transaction.nonce,
      idTokenExpected: true,
    });
  } catch (error) {
    if (error instanceof oidc.ResponseBodyError) return { error: error.error.slice(0, 64) };
    const code = (error as { code?: unknown }).code;
    return { error: typeof code === "string" ? code : "exchange_failed" };
  }

  const issued = { accessToken: tokens.access_token, refreshToken: tokens.refresh_token ?? null };
  const claims = tokens.claims();
  const subject = subjectFromClaims(provider, claims);
  if (!subject) return { error: "no_subject_claim", issued };
  const email =
    typeof claims?.email === "string"
      ? claims.email
      : provider.id === "microsoft" && typeof claims?.preferred_username === "string"
        ? claims.preferred_username
        : null;
  if (!email?.includes("@")) return { error: "no_email_claim", issued, subject };
  if (provider.id !== "microsoft" && claims?.email_verified === false) {
    return { error: "email_not_verified", issued, subject, address: email.toLowerCase() };
  }
  const requested = transaction.requestedScopes.split(" ");
  return {
    ...issued,
    subject,
    address: email.toLowerCase(),
    tenant: typeof claims?.tid === "string" ? claims.tid : null,
    // RFC 6749 §5.1: no `scope` in the answer means the scopes requested were granted.
    scopes: tokens.scope ? tokens.scope.split(" ").filter(Boolean) : requested,
    expiresAt: new Date(Date.now() + (tokens.expires_in ?? 3600) * 1000),
    requestedAt,
  };
}

export const EXCHANGE_MESSAGES: Record<string, string> = {
  no_email_claim: "The provider did not tell us the mailbox's address. Try again.",
  no_subject_claim: "The provider did not tell us which account this is. Try again.",
  email_not_verified: "The provider says this address is not verified, so it cannot be connected.",
};
