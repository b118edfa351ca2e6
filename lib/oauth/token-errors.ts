import type { ProviderId } from "@/db/schema";
import { explainScopes } from "./scope-explanations";

// Which token-endpoint answers mean "a person must reconnect" and which mean "try again later".
// Decided from `error` and Microsoft's `error_codes` only: descriptions are prose that changes
// and is localised. Anything we do not recognise is transient: backing off costs a few minutes,
// while a wrong needs_reconnect takes a working mailbox away from its organisation.

export type TokenErrorKind = "permanent" | "transient";

export type TokenErrorClassification = { kind: TokenErrorKind; code: string; cause: string };

export type TokenErrorResponse = { status: number | null; body: unknown; networkError?: string };

export type PermanentTokenError = {
  provider: ProviderId | "any";
  error: string[];
  /** Microsoft AADSTS numbers; absent = any (or none). */
  errorCode?: number;
  code: string;
  cause: string;
};

const GOOGLE_INVALID_GRANT =
  "Google no longer accepts Mailwarden's permission for this mailbox. The likely causes: the " +
  "access was removed in the Google account's security settings; the mailbox was not used " +
  "through Mailwarden for 6 months; the account's password was changed; more than 100 newer " +
  'permissions for this app replaced this one; or the app is still in Google\'s "Testing" ' +
  "mode, where permissions end after 7 days. Reconnect the mailbox to fix it.";

const MICROSOFT_ERRORS = ["invalid_grant", "interaction_required"];

/** The permanent errors, most specific first. Exported for the security and help pages. */
export const PERMANENT_TOKEN_ERRORS: readonly PermanentTokenError[] = [
  {
    provider: "microsoft",
    error: MICROSOFT_ERRORS,
    errorCode: 65001,
    code: "AADSTS65001",
    cause:
      "Microsoft says nobody has consented to Mailwarden sending from this mailbox, or the " +
      "consent was removed. Reconnect and accept, or ask a Microsoft 365 administrator to " +
      "grant consent for the organisation.",
  },
  {
    provider: "microsoft",
    error: MICROSOFT_ERRORS,
    errorCode: 70008,
    code: "AADSTS70008",
    cause:
      "The Microsoft sign-in for this mailbox has expired: it was unused for 90 days or was " +
      "revoked. Reconnect the mailbox.",
  },
  {
    provider: "microsoft",
    error: MICROSOFT_ERRORS,
    errorCode: 700082,
    code: "AADSTS700082",
    cause:
      "The Microsoft sign-in for this mailbox expired because it was not used for 90 days. " +
      "Reconnect the mailbox.",
  },
  {
    provider: "microsoft",
    error: MICROSOFT_ERRORS,
    errorCode: 50173,
    code: "AADSTS50173",
    cause:
      "The Microsoft permission ended because the account's password was changed or its " +
      "sign-ins were revoked. Reconnect the mailbox.",
  },
  {
    provider: "microsoft",
    error: MICROSOFT_ERRORS,
    errorCode: 50076,
    code: "AADSTS50076",
    cause:
      "Microsoft now requires multi-factor authentication for this account. Reconnect the " +
      "mailbox and complete the extra sign-in step.",
  },
  {
    provider: "microsoft",
    error: MICROSOFT_ERRORS,
    errorCode: 50079,
    code: "AADSTS50079",
    cause:
      "Microsoft now requires this account to register for multi-factor authentication. " +
      "Reconnect the mailbox and complete the set-up it asks for.",
  },
  {
    provider: "microsoft",
    error: ["interaction_required"],
    code: "interaction_required",
    cause:
      "Microsoft needs the mailbox's owner to sign in again before Mailwarden may send. " +
      "Reconnect the mailbox.",
  },
  {
    provider: "google",
    error: ["invalid_grant"],
    code: "invalid_grant",
    cause: GOOGLE_INVALID_GRANT,
  },
  {
    provider: "any",
    error: ["invalid_grant"],
    code: "invalid_grant",
    cause:
      "The provider no longer accepts Mailwarden's permission for this mailbox (it was " +
      "revoked, expired or replaced). Reconnect the mailbox.",
  },
];

const TRANSIENT_CAUSES = {
  timeout: "The provider's token service did not answer in time. Mailwarden will try again.",
  network: "Mailwarden could not reach the provider's token service. It will try again.",
  rate_limited: "The provider asked Mailwarden to slow down. It will try again shortly.",
  server: "The provider's token service had an error. Mailwarden will try again.",
  invalid_client:
    "The provider refused Mailwarden's own client credentials (an expired or wrong client " +
    "secret?). An operator must fix the configuration; reconnecting will not help.",
  unknown: "The provider gave an answer Mailwarden does not recognise. It will try again.",
} as const;

/**
 * A refresh that succeeded without a permission sending needs. The code is the one the callback
 * gives a grant missing a scope at connect time; the permissions are named by their titles on
 * the consent page.
 */
export function missingScopeFailure(
  providerLabel: string,
  missing: string[],
): TokenErrorClassification {
  const titles = explainScopes(missing).map((s) => `"${s.title}"`);
  return {
    kind: "permanent",
    code: "missing_scope",
    cause:
      `${providerLabel} no longer grants Mailwarden the permission ${titles.join(" and ")}: it ` +
      "was taken back at the provider (on its consent screen or in the account's settings). " +
      "Mailwarden cannot send from this mailbox until it is reconnected with that permission " +
      "granted. Reconnect the mailbox and leave that box ticked.",
  };
}

type ErrorBody = { error?: unknown; error_codes?: unknown };

function readBody(body: unknown): { error: string | null; errorCodes: number[] } {
  if (!body || typeof body !== "object") return { error: null, errorCodes: [] };
  const { error, error_codes } = body as ErrorBody;
  return {
    error: typeof error === "string" ? error : null,
    errorCodes: Array.isArray(error_codes)
      ? error_codes.filter((c): c is number => Number.isInteger(c))
      : [],
  };
}

function matches(rule: PermanentTokenError, provider: string, error: string, codes: number[]) {
  if (rule.provider !== "any" && rule.provider !== provider) return false;
  if (!rule.error.includes(error)) return false;
  return rule.errorCode === undefined || codes.includes(rule.errorCode);
}

function transient(code: string, cause: keyof typeof TRANSIENT_CAUSES): TokenErrorClassification {
  return { kind: "transient", code, cause: TRANSIENT_CAUSES[cause] };
}

export function classifyTokenError(
  providerId: string,
  response: TokenErrorResponse,
): TokenErrorClassification {
  if (response.networkError) {
    return response.networkError === "timeout"
      ? transient("timeout", "timeout")
      : transient("network", "network");
  }
  const { status } = response;
  if (status === 429) return transient("http_429", "rate_limited");
  if (status !== null && status >= 500) return transient(`http_${status}`, "server");

  const { error, errorCodes } = readBody(response.body);
  if (error) {
    const rule = PERMANENT_TOKEN_ERRORS.find((r) => matches(r, providerId, error, errorCodes));
    if (rule) return { kind: "permanent", code: rule.code, cause: rule.cause };
    if (error === "invalid_client" || error === "unauthorized_client") {
      return transient(error, "invalid_client");
    }
    return transient(error.slice(0, 64), "unknown");
  }
  return transient(status === null ? "unknown" : `http_${status}`, "unknown");
}
