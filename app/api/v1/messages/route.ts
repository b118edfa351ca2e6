import { apiKeyContext } from "@/lib/mail/api-keys";
import {
  invalidIdempotencyKeyResponse,
  invalidRequestResponse,
  sendOutcomeResponse,
} from "@/lib/mail/http";
import { MAX_REQUEST_BYTES } from "@/lib/mail/message";
import { problemResponse } from "@/lib/mail/problem";
import { sendMessage } from "@/lib/mail/send";

// POST /api/v1/messages (ARCHITECTURE.md, "The send chokepoint"). This handler only reads the
// request (key, Idempotency-Key, `Prefer: respond-async`, a size-capped body); every decision
// is the chokepoint's. With `respond-async` a message that passes every check is queued and
// answered `202 Accepted` with its Location (ARCHITECTURE.md, "Queued messages").

export const dynamic = "force-dynamic";
export const runtime = "nodejs";

// RFC 9110 token-ish: visible ASCII only, so a key can never smuggle a line break into a log.
const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;

type BodyRead = { ok: true; text: string } | { ok: false; status: 400 | 413; message: string };

/** Reads at most MAX_REQUEST_BYTES and stops there, whatever Content-Length claims. */
async function readCappedBody(request: Request): Promise<BodyRead> {
  const tooLarge = {
    ok: false,
    status: 413,
    message: `must be at most ${MAX_REQUEST_BYTES} bytes`,
  } as const;
  const declared = Number(request.headers.get("content-length") ?? Number.NaN);
  if (Number.isFinite(declared) && declared > MAX_REQUEST_BYTES) return tooLarge;
  if (!request.body) return { ok: true, text: "" };

  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > MAX_REQUEST_BYTES) {
      await reader.cancel().catch(() => {});
      return tooLarge;
    }
    chunks.push(value);
  }
  const bytes = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  try {
    return { ok: true, text: new TextDecoder("utf-8", { fatal: true }).decode(bytes) };
  } catch {
    return { ok: false, status: 400, message: "is not valid UTF-8" };
  }
}

/** RFC 7240: does a `Prefer` header name `respond-async` (any case, with or without values)? */
function prefersAsync(request: Request): boolean {
  const header = request.headers.get("prefer");
  if (!header) return false;
  return header
    .split(",")
    .some((preference) => preference.split(/[=;]/, 1)[0]?.trim().toLowerCase() === "respond-async");
}

export async function POST(request: Request): Promise<Response> {
  try {
    // The chokepoint re-reads the key's state with the mailbox, so a remembered key will do.
    const ctx = await apiKeyContext(request, { remember: true });
    if (!ctx) return sendOutcomeResponse({ kind: "unauthorized" });

    const idempotencyKey = request.headers.get("idempotency-key");
    if (idempotencyKey !== null && !IDEMPOTENCY_KEY.test(idempotencyKey)) {
      return invalidIdempotencyKeyResponse();
    }

    const body = await readCappedBody(request);
    if (!body.ok)
      return invalidRequestResponse(body.status, [{ field: "body", message: body.message }]);

    const outcome = await sendMessage({
      ctx,
      body: { type: "http", text: body.text, contentType: request.headers.get("content-type") },
      ...(idempotencyKey === null ? {} : { idempotencyKey }),
      purpose: "api",
      respondAsync: prefersAsync(request),
    });
    return sendOutcomeResponse(outcome);
  } catch (error) {
    // The class name only: messages can carry addresses or provider replies.
    console.error(
      `[send] unexpected ${(error as Error)?.name ?? "error"} in POST /api/v1/messages`,
    );
    return problemResponse(500, "Internal error", [], {
      detail:
        "The message may not have been sent. A retry with the same Idempotency-Key answers " +
        "with what was recorded for it instead of sending it twice.",
    });
  }
}
