import type { ActionResult } from "@/lib/auth/action";
import type { ConnectionTestOutcome, SendOutcome } from "./outcomes";

// The one place a send outcome becomes a form message (lib/mail/http.ts is the HTTP one).

function fieldOf(path: string): string {
  return path.split("/")[0] || "body";
}

export function sendOutcomeResult(outcome: SendOutcome | ConnectionTestOutcome): ActionResult {
  switch (outcome.kind) {
    case "sent":
      return {
        ok: true,
        message: `Sent. The server replied: ${outcome.smtpResponse ?? "(no reply text)"}`,
      };
    case "replayed":
      return { ok: outcome.status === "sent", message: "This message was already sent." };
    case "connected":
      return { ok: true, message: outcome.cause };
    case "invalid": {
      const fieldErrors: Record<string, string[]> = {};
      for (const problem of outcome.problems) {
        const field = fieldOf(problem.field);
        const list = fieldErrors[field] ?? [];
        list.push(problem.message);
        fieldErrors[field] = list;
      }
      return { message: "Nothing was sent: please correct the highlighted fields.", fieldErrors };
    }
    case "idempotency_mismatch":
      return { message: "A different message was already sent with this key." };
    case "unauthorized":
      return { message: "Your session has ended. Sign in again." };
    case "rate_limited":
      return {
        message: outcome.cause ?? `Too many messages. Try again in ${outcome.retryAfterSeconds} s.`,
      };
    case "provider_failed":
      return {
        message: `Not sent. ${outcome.cause}${outcome.smtpResponse ? ` The server replied: ${outcome.smtpResponse}` : ""}`,
      };
    default:
      return { message: outcome.cause };
  }
}
