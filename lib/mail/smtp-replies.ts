// What an SMTP failure means and what a person should do about it, by the replies Gmail and
// Microsoft 365 document for XOAUTH2 (535 5.7.8, 5.7.139, 5.7.3, 454 4.7.0 ...). Pure: the
// send chokepoint decides what to change (mailbox status, retries) from the kind.

export type SmtpFailureKind =
  | "reconnect"
  | "admin_action"
  | "quota"
  | "transient"
  /** The connection ended after the whole message was handed over and before the reply. */
  | "interrupted"
  | "tls"
  | "rejected";

export type SmtpFailure = {
  kind: SmtpFailureKind;
  /** Short and stable, stored as the message's and the mailbox's error code. */
  code: string;
  /** Plain words: what happened and what to do. */
  cause: string;
  /** The server's reply line(s), when there was one. Never holds a token. */
  smtpResponse: string | null;
  /**
   * `quota`: when sending may work again. Both providers count a rolling 24 hours, so the
   * classifier says 24 hours from now; lib/mail/quota.ts narrows it with what was sent.
   */
  retryAt?: Date;
};

const DAY_MS = 86_400_000;

/**
 * The code of an error raised when a connection failed without a reply after the last byte of
 * DATA (lib/mail/connection-pool.ts): whether the provider accepted the message is unknown.
 */
export const DELIVERY_UNCERTAIN = "EDELIVERYUNCERTAIN";

type NodemailerError = {
  code?: unknown;
  originalCode?: unknown;
  responseCode?: unknown;
  response?: unknown;
  permanent?: unknown;
  command?: unknown;
  message?: unknown;
  cause?: unknown;
};

const MAX_RESPONSE_LENGTH = 1_000;

const CERTIFICATE_CODES = new Set([
  "SELF_SIGNED_CERT_IN_CHAIN",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "CERT_HAS_EXPIRED",
  "CERT_NOT_YET_VALID",
  "CERT_UNTRUSTED",
  "CERT_REVOKED",
  "CERT_SIGNATURE_FAILURE",
  "ERR_TLS_CERT_ALTNAME_INVALID",
  "HOSTNAME_MISMATCH",
]);

// Connection-level failures worth another try: the peer or the network, not the message.
const CONNECTION_CODES = new Set([
  "ECONNECTION",
  "ESOCKET",
  "ETIMEDOUT",
  "EDNS",
  "ECONNREFUSED",
  "ECONNRESET",
  "EPIPE",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EAI_AGAIN",
]);

export const ADMIN_ACTION_INSTRUCTIONS =
  "An Exchange administrator must allow SMTP AUTH for this mailbox: run " +
  "`Set-CASMailbox -Identity <address> -SmtpClientAuthenticationDisabled $false` in Exchange " +
  "Online PowerShell (or tick 'Authenticated SMTP' for the mailbox in the Microsoft 365 admin " +
  "center), and make sure Security Defaults are off for the tenant, since they block SMTP AUTH " +
  "for everyone. Reconnecting the mailbox will not help until this is done.";

export const SENT_ITEMS_INSTRUCTIONS =
  "Microsoft 365 refuses to send because this mailbox is full. Messages sent over SMTP are " +
  "saved in its Sent Items folder, so a mailbox that sends a lot fills up. An Exchange " +
  "administrator should set a retention policy that deletes Sent Items after a few days (a " +
  "retention tag on the Sent Items folder in the Microsoft Purview or Exchange admin center), " +
  "or empty Sent Items, then press Retry now. Reconnecting the mailbox will not help.";

const QUOTA_CAUSES: Record<"microsoft" | "gmail", string> = {
  microsoft:
    "Microsoft 365 refused the message: this mailbox reached its daily sending limit (10,000 " +
    "recipients in a rolling 24 hours). The mailbox is not broken and needs no reconnecting; " +
    "nothing was sent.",
  gmail:
    "Gmail refused the message: this mailbox reached its daily sending limit (about 2,000 " +
    "messages a day for Google Workspace, 500 for a personal account, in a rolling 24 hours). " +
    "The mailbox is not broken and needs no reconnecting; nothing was sent.",
};

/** The provider's own daily quota (Microsoft 554 5.2.0, Gmail 550 5.4.5), or null. */
function quotaOf(responseCode: number | null, status: string | null, response: string | null) {
  if (responseCode === 554 && status === "5.2.0") return "microsoft" as const;
  if (response && /SubmissionQuotaExceeded/i.test(response)) return "microsoft" as const;
  if (responseCode === 550 && status === "5.4.5") return "gmail" as const;
  return null;
}

function codesOf(error: NodemailerError): string[] {
  const nested = (error.cause ?? {}) as NodemailerError;
  return [error.code, error.originalCode, nested.code]
    .filter((code): code is string => typeof code === "string")
    .map((code) => code.toUpperCase());
}

function responseOf(error: NodemailerError): string | null {
  if (typeof error.response !== "string" || error.response.trim() === "") return null;
  return error.response.trim().slice(0, MAX_RESPONSE_LENGTH);
}

function responseCodeOf(error: NodemailerError, response: string | null): number | null {
  if (typeof error.responseCode === "number") return error.responseCode;
  const fromText = response ? Number(/^(\d{3})/.exec(response)?.[1]) : Number.NaN;
  return Number.isInteger(fromText) ? fromText : null;
}

/** The enhanced status code (RFC 3463) of a reply, e.g. "5.7.139". */
export function enhancedStatus(response: string | null): string | null {
  return response ? (/^\d{3}[ -](\d\.\d{1,3}\.\d{1,3})\b/.exec(response)?.[1] ?? null) : null;
}

function isCertificateProblem(error: NodemailerError, codes: string[]): boolean {
  if (codes.some((code) => CERTIFICATE_CODES.has(code) || code.startsWith("ERR_TLS_CERT"))) {
    return true;
  }
  return typeof error.message === "string" && /certificate/i.test(error.message);
}

function isTlsHandshakeProblem(error: NodemailerError, codes: string[]): boolean {
  if (codes.includes("ETLS")) return true;
  if (codes.some((code) => code.startsWith("ERR_SSL_"))) return true;
  return (
    typeof error.message === "string" &&
    /wrong version number|unsupported protocol|no protocols available|tlsv1 alert/i.test(
      error.message,
    )
  );
}

/**
 * Reads a nodemailer error. Call it after nodemailer's own single XOAUTH2 retry (it renews
 * once after a 334 challenge), so a 535 here is the second refusal, not the first.
 */
export function classifySmtpError(error: unknown): SmtpFailure {
  const e = (typeof error === "object" && error !== null ? error : {}) as NodemailerError;
  const codes = codesOf(e);
  const smtpResponse = responseOf(e);
  const responseCode = responseCodeOf(e, smtpResponse);
  const status = enhancedStatus(smtpResponse);

  if (isCertificateProblem(e, codes)) {
    const detail = codes.find((code) => code !== "ESOCKET" && code !== "ETLS") ?? "unknown";
    return {
      kind: "tls",
      code: "tls_certificate",
      cause:
        `The SMTP server's certificate could not be verified (${detail}). Mailwarden only sends ` +
        "over TLS with a verified certificate, so nothing was sent and no credentials were " +
        "offered. Check that the provider's SMTP host is right and that nothing on the network " +
        "intercepts TLS.",
      smtpResponse,
    };
  }
  if (isTlsHandshakeProblem(e, codes) && (responseCode === null || responseCode >= 500)) {
    return {
      kind: "tls",
      code: "tls_unavailable",
      cause:
        "The SMTP server did not offer a usable TLS connection (STARTTLS missing or refused, or " +
        "a TLS version below 1.2). Mailwarden never authenticates or sends without TLS, so " +
        "nothing was sent. Check the SMTP host and port of the provider.",
      smtpResponse,
    };
  }

  const quota = quotaOf(responseCode, status, smtpResponse);
  if (quota) {
    return {
      kind: "quota",
      code: `smtp_${responseCode}_${status ?? "quota"}`,
      cause: QUOTA_CAUSES[quota],
      smtpResponse,
      retryAt: new Date(Date.now() + DAY_MS),
    };
  }
  if (responseCode === 554 && status === "5.2.2") {
    return {
      kind: "admin_action",
      code: "smtp_554_5.2.2",
      cause: SENT_ITEMS_INSTRUCTIONS,
      smtpResponse,
    };
  }
  if (responseCode === 432 && status === "4.3.2") {
    return {
      kind: "transient",
      code: "smtp_432_4.3.2",
      cause:
        "The provider refused another connection for this mailbox (432 4.3.2: it allows only a " +
        "few at a time, Microsoft 365 three), and none came free in time. Nothing was sent; " +
        "try again in a minute.",
      smtpResponse,
    };
  }
  if (codes.includes(DELIVERY_UNCERTAIN)) {
    return {
      kind: "interrupted",
      code: "interrupted",
      cause:
        "The connection ended after the whole message was handed to the provider and before it " +
        "answered, so the provider may have accepted it. Not resent, to avoid a duplicate — " +
        "check Sent Items before sending it again.",
      smtpResponse,
    };
  }
  if (codes.includes("ESLOTSBUSY")) {
    return {
      kind: "transient",
      code: "connections_busy",
      cause:
        "Every SMTP connection the provider allows for this mailbox stayed busy with other " +
        "messages until this one had to give up. Nothing was sent; try again in a minute.",
      smtpResponse,
    };
  }
  if (responseCode === 535 && (status === "5.7.139" || status === "5.7.3")) {
    return {
      kind: "admin_action",
      code: `smtp_535_${status}`,
      cause: `The provider accepted the sign-in token but refuses SMTP for this mailbox. ${ADMIN_ACTION_INSTRUCTIONS}`,
      smtpResponse,
    };
  }
  if (responseCode === 535 || (codes.includes("EAUTH") && responseCode === null)) {
    return {
      kind: "reconnect",
      code: status ? `smtp_535_${status}` : "smtp_auth_refused",
      cause:
        "The provider refused the mailbox's access token even after a fresh one was fetched: " +
        "the grant was revoked, the password changed, or the mail scope was not granted. " +
        "Reconnect the mailbox.",
      smtpResponse,
    };
  }
  if (responseCode !== null && responseCode >= 400 && responseCode < 500) {
    return {
      kind: "transient",
      code: `smtp_${responseCode}`,
      cause:
        "The provider refused for now (a temporary SMTP error, such as Gmail's 421 4.7.0 " +
        '"Try again later"); Mailwarden tried again with growing pauses until the request\'s ' +
        "time ran out. Nothing was sent; try again in a few minutes.",
      smtpResponse,
    };
  }
  if (responseCode !== null && responseCode >= 500) {
    return {
      kind: "rejected",
      code: `smtp_${responseCode}`,
      cause: rejectionCause(responseCode),
      smtpResponse,
    };
  }
  if (e.permanent === false || codes.some((code) => CONNECTION_CODES.has(code))) {
    return {
      kind: "transient",
      code: codes[0]?.toLowerCase() ?? "connection",
      cause:
        "The SMTP server could not be reached or dropped the connection. Nothing was sent; try " +
        "again in a few minutes.",
      smtpResponse,
    };
  }
  return {
    kind: "rejected",
    code: codes[0]?.toLowerCase() ?? "smtp_error",
    cause: "The message could not be handed to the provider. Nothing was sent.",
    smtpResponse,
  };
}

function rejectionCause(responseCode: number): string {
  if (responseCode === 550 || responseCode === 551 || responseCode === 553) {
    return (
      "The provider refused the sender or a recipient address (see its reply). Check the " +
      "addresses; the message was not sent."
    );
  }
  if (responseCode === 552) {
    return "The provider refused the message as too large. Send a smaller message.";
  }
  if (responseCode === 554) {
    return (
      "The provider refused the message (often a policy or spam decision; see its reply). " +
      "The message was not sent."
    );
  }
  return "The provider refused the message permanently (see its reply). It was not sent.";
}
