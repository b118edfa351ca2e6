import "server-only";
import { sendRequestProblem } from "./message";
import type { MessageStatusOutcome } from "./message-status";
import type { ConnectionTestOutcome, SendOutcome } from "./outcomes";
import { type FieldProblem, PROBLEM_TYPES, problemResponse } from "./problem";

// The one place a send outcome becomes HTTP (ARCHITECTURE.md, "The send chokepoint"). Every error
// is RFC 9457 problem JSON; no token, key or secret is ever part of an outcome, so none can
// reach a body here.

const JSON_HEADERS = { "content-type": "application/json", "cache-control": "no-store" };

function json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), { status, headers: { ...JSON_HEADERS, ...headers } });
}

export function messageLocation(id: string): string {
  return `/api/v1/messages/${encodeURIComponent(id)}`;
}

export function sendOutcomeResponse(outcome: SendOutcome | ConnectionTestOutcome): Response {
  switch (outcome.kind) {
    case "sent":
      return json(201, {
        id: outcome.id,
        status: "sent",
        messageId: outcome.messageId,
        smtpResponse: outcome.smtpResponse,
      });
    case "connected":
      return json(200, { status: "connected", address: outcome.address, detail: outcome.cause });
    case "queued":
      // RFC 7240: the preference was honoured; RFC 9110 202 with where to look.
      return json(
        202,
        { id: outcome.id, status: "queued", location: messageLocation(outcome.id) },
        {
          location: messageLocation(outcome.id),
          "preference-applied": "respond-async",
          ...(outcome.isReplay ? { "idempotent-replayed": "true" } : {}),
        },
      );
    case "replayed":
      if (outcome.status === "sent") {
        return json(
          200,
          {
            id: outcome.id,
            status: "sent",
            messageId: outcome.messageId,
            smtpResponse: outcome.smtpResponse,
          },
          { "idempotent-replayed": "true" },
        );
      }
      return problemResponse(
        502,
        "The first request with this Idempotency-Key failed",
        [],
        {
          type: PROBLEM_TYPES.replayedFailure,
          detail:
            outcome.errorCode === "interrupted"
              ? "This is the stored result of the first request; nothing was sent again. Its " +
                "connection ended after the whole message was handed over, so the provider may " +
                "have it: check Sent Items before sending it with a new Idempotency-Key."
              : "This is the stored result of the first request; nothing was sent again. Fix " +
                "the cause and send with a new Idempotency-Key.",
          id: outcome.id,
          code: outcome.errorCode,
          smtpResponse: outcome.smtpResponse,
        },
        { "idempotent-replayed": "true" },
      );
    case "idempotency_mismatch":
      return problemResponse(422, "Idempotency-Key reused with a different body", [], {
        type: PROBLEM_TYPES.idempotencyMismatch,
        detail:
          "This Idempotency-Key was first used with a different message. Use a new key for a " +
          "new message.",
      });
    case "idempotency_in_progress":
      // draft-ietf-httpapi-idempotency-key-header: 409 while the first request is processed.
      return problemResponse(
        409,
        "A request with this Idempotency-Key is still being processed",
        [],
        { type: PROBLEM_TYPES.idempotencyInProgress, detail: outcome.cause },
        { "retry-after": String(Math.max(1, outcome.retryAfterSeconds)) },
      );
    case "invalid":
      return problemResponseOf(
        sendRequestProblem({ ok: false, status: outcome.status, problems: outcome.problems }),
      );
    case "unauthorized":
      return problemResponse(
        401,
        "Missing or invalid API key",
        [],
        {
          type: PROBLEM_TYPES.unauthorized,
          detail: "Send a valid, unrevoked API key as `Authorization: Bearer <key>`.",
        },
        { "www-authenticate": 'Bearer realm="mailwarden"' },
      );
    case "forbidden":
      return problemResponse(403, "Not allowed", [], {
        type: PROBLEM_TYPES.forbidden,
        detail: outcome.cause,
      });
    case "not_found":
      return problemResponse(404, "Mailbox not found", [], {
        type: PROBLEM_TYPES.mailboxNotFound,
        detail: outcome.cause,
      });
    case "conflict":
      return problemResponse(409, "The mailbox cannot send", [], {
        type: PROBLEM_TYPES.mailboxUnavailable,
        detail: outcome.cause,
        mailboxStatus: outcome.mailboxStatus,
      });
    case "paused":
      return problemResponse(423, "Sending is paused", [], {
        type: PROBLEM_TYPES.sendingPaused,
        detail: outcome.cause,
        scope: outcome.scope,
      });
    case "rate_limited":
      return problemResponse(
        429,
        "Too many messages",
        [],
        {
          type: PROBLEM_TYPES.rateLimited,
          detail:
            outcome.cause ??
            `Rate limit reached (${outcome.limit}). Try again in ${outcome.retryAfterSeconds} seconds.`,
          limit: outcome.limit,
        },
        { "retry-after": String(Math.max(1, outcome.retryAfterSeconds)) },
      );
    case "unavailable":
      return problemResponse(
        503,
        "Temporarily unavailable",
        [],
        { type: PROBLEM_TYPES.temporarilyUnavailable, detail: outcome.cause },
        { "retry-after": String(Math.max(1, outcome.retryAfterSeconds)) },
      );
    case "provider_failed":
      return problemResponse(
        // A provider's daily quota is a limit like ours: 429 with the time it ends.
        outcome.failure === "quota" ? 429 : 502,
        outcome.failure === "quota"
          ? "The mailbox reached its provider's sending limit"
          : "The provider did not accept the message",
        [],
        {
          type: PROBLEM_TYPES.providerFailed,
          detail: outcome.cause,
          id: outcome.id,
          failure: outcome.failure,
          code: outcome.code,
          smtpResponse: outcome.smtpResponse,
        },
        outcome.retryAfterSeconds === null
          ? {}
          : { "retry-after": String(outcome.retryAfterSeconds) },
      );
  }
}

function problemResponseOf(problem: ReturnType<typeof sendRequestProblem>): Response {
  const { status, title, errors, ...extra } = problem;
  return problemResponse(status, title, errors, extra);
}

/** Refusals the route makes before the chokepoint (headers, body size). */
export function invalidRequestResponse(
  status: 400 | 413 | 415,
  problems: FieldProblem[],
): Response {
  return sendOutcomeResponse({ kind: "invalid", status, problems });
}

export function invalidIdempotencyKeyResponse(): Response {
  return problemResponse(
    400,
    "Invalid Idempotency-Key",
    [{ field: "Idempotency-Key", message: "must be 1 to 255 visible ASCII characters" }],
    { type: PROBLEM_TYPES.invalidIdempotencyKey },
  );
}

/** GET /api/v1/messages/{id}. */
export function messageStatusResponse(outcome: MessageStatusOutcome): Response {
  switch (outcome.kind) {
    case "found":
      return json(200, outcome.message);
    case "message_not_found":
      return problemResponse(404, "Message not found", [], {
        type: PROBLEM_TYPES.messageNotFound,
        detail: "No message with this id that this API key may see.",
      });
    default:
      return sendOutcomeResponse(outcome);
  }
}
