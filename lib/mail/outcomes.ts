import type { MailboxStatus } from "@/db/schema";
import type { LimitName } from "@/lib/ratelimit";
import type { FieldProblem } from "./problem";
import type { SmtpFailure, SmtpFailureKind } from "./smtp-replies";

// What the send chokepoint answers. Every outcome is a value, never an exception, so the route
// and the dashboard map each one to exactly one response (lib/mail/http.ts, form-result.ts).

export type PauseScope = "global" | "organization" | "mailbox";

/** Refusals shared by sends and connection tests. */
export type RefusalOutcome =
  | { kind: "unauthorized" }
  | { kind: "forbidden"; cause: string }
  | { kind: "not_found"; cause: string }
  | { kind: "conflict"; cause: string; mailboxStatus: MailboxStatus | null }
  | { kind: "paused"; scope: PauseScope; cause: string }
  | {
      kind: "rate_limited";
      /** `providerQuota`: the mailbox is at its provider's daily limit (lib/mail/quota.ts). */
      limit: LimitName | "providerQuota";
      retryAfterSeconds: number;
      /** Plain words when the limit is not one of ours. */
      cause?: string;
    }
  /** The limit store could not answer: refused without counting, not the caller's doing. */
  | { kind: "unavailable"; retryAfterSeconds: number; cause: string }
  | {
      kind: "provider_failed";
      /** The message row, when one was written. */
      id: string | null;
      failure: SmtpFailureKind | "token";
      code: string;
      smtpResponse: string | null;
      cause: string;
      retryAfterSeconds: number | null;
    };

export type SendOutcome =
  | { kind: "sent"; id: string; messageId: string | null; smtpResponse: string | null }
  /** Accepted for sending later (`Prefer: respond-async`); `isReplay` for an Idempotency-Key retry. */
  | { kind: "queued"; id: string; isReplay: boolean }
  | {
      kind: "replayed";
      id: string;
      status: "sent" | "failed";
      messageId: string | null;
      smtpResponse: string | null;
      errorCode: string | null;
    }
  | { kind: "idempotency_mismatch" }
  /**
   * The first request with this Idempotency-Key has not settled within the wait (it is still
   * being sent, here or in another process): the caller retries later; the mailbox is fine.
   */
  | { kind: "idempotency_in_progress"; retryAfterSeconds: number; cause: string }
  | { kind: "invalid"; status: 400 | 413 | 415; problems: FieldProblem[] }
  | RefusalOutcome;

export type ConnectionTestOutcome =
  | { kind: "connected"; address: string; cause: string }
  | RefusalOutcome;

export function isRefusal(value: object): value is RefusalOutcome {
  return "kind" in value;
}

const SMTP_FAILURE_KINDS: ReadonlySet<string> = new Set<SmtpFailureKind>([
  "reconnect",
  "admin_action",
  "quota",
  "transient",
  "interrupted",
  "tls",
  "rejected",
]);

export function isSmtpFailure(value: SmtpFailure | RefusalOutcome): value is SmtpFailure {
  return SMTP_FAILURE_KINDS.has(value.kind);
}
