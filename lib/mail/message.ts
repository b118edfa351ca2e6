// The one validator for outgoing messages (HTTP send route and dashboard test sends).
// Framework-free on purpose: it may also give form hints in the browser later.
//
// Security model item 10: structured fields only. Every header value is refused when it
// holds a line break or any other control character, every recipient entry must be exactly
// one address, lengths and counts are bounded, and HTML is sanitised. Nothing here throws
// on bad input; it collects every problem so a caller can fix them all in one round trip.

import * as z from "zod";
import { formatAddress, parseAddress } from "./address";
import { capProblems, toFieldProblems, UNKNOWN_FIELD_HINTS } from "./field-problems";
import { hasMoreJsonValues } from "./json-values";
import { type FieldProblem, PROBLEM_TYPES, type ProblemDetails, problemJson } from "./problem";
import { sanitizeMessageHtml } from "./sanitize";
import { codePointLength, hasHeaderControl, utf8Length } from "./text";

export { formatAddress, type ParsedAddress, parseAddress } from "./address";
export type { FieldProblem } from "./problem";
export { problemJson, problemResponse } from "./problem";
export {
  ALLOWED_STYLES,
  MAX_HTML_DEPTH,
  MAX_STYLE_ATTRIBUTE_LENGTH,
  MAX_STYLE_VALUE_LENGTH,
  sanitizeMessageHtml,
} from "./sanitize";

export type SendRequest = {
  mailbox: string;
  /** Canonical entries: `name@example.com` or `"Display Name" <name@example.com>`. */
  to: string[];
  cc: string[];
  bcc: string[];
  replyTo?: string;
  subject: string;
  text?: string;
  /** Already sanitised. */
  html?: string;
};

export type SendRequestResult =
  | { ok: true; value: SendRequest }
  | { ok: false; problems: FieldProblem[] };

export type SendRequestTextResult =
  | { ok: true; value: SendRequest }
  | { ok: false; status: 400 | 413 | 415; problems: FieldProblem[] };

export const MAX_RECIPIENTS = 50;
export const MAX_MAILBOX_LENGTH = 320;
/** RFC 5322 line length; nodemailer folds and encodes, so characters are what we bound. */
export const MAX_SUBJECT_LENGTH = 998;
/** text + html together, counted in UTF-8 bytes as sent. */
export const MAX_BODY_BYTES = 10 * 1024 * 1024;
/**
 * Cap on the raw request body. JSON escaping inflates a body (quotes in HTML, newlines in
 * text), so the raw cap is looser than the body cap; the body cap is checked after parsing.
 * The route should stop reading at this size rather than buffer an unbounded stream.
 */
export const MAX_REQUEST_BYTES = 2 * MAX_BODY_BYTES + 1024 * 1024;
/**
 * Cap on html alone, in UTF-8 bytes. Sanitising is the one step whose cost a sender controls:
 * at this size the slowest HTML we could construct (an element every 5 bytes) takes about
 * 0.3 s of CPU on a 2-core machine, where 10 MB of it held the request thread for about 6 s
 * (bench/sanitize.ts). Lowering the cap was chosen over a worker pool: mail clients clip far
 * smaller messages (Gmail at 102 KB), so no real message needs more.
 */
export const MAX_HTML_BYTES = 512 * 1024;
/** Arrays, objects and list items a body may hold: 50 recipients and every field fit easily. */
export const MAX_JSON_VALUES = 1_000;
const HTML_TOO_LARGE = `must be at most ${MAX_HTML_BYTES} bytes (512 KB)`;
function typeError(expected: string) {
  return {
    error: (issue: { input?: unknown }) =>
      issue.input === undefined ? "is required" : `must be ${expected}`,
  };
}

const addressEntry = z.string(typeError("a text address")).transform((entry, ctx) => {
  const parsed = parseAddress(entry);
  if (parsed.ok) return formatAddress(parsed.value);
  ctx.addIssue({ code: "custom", message: parsed.message });
  return z.NEVER;
});

const addressList = z.array(addressEntry, typeError("a list of addresses"));

const headerText = z.string(typeError("text")).superRefine((value, ctx) => {
  if (hasHeaderControl(value)) {
    ctx.addIssue({
      code: "custom",
      message: "must not contain line breaks, tabs or other control characters",
    });
  } else if (!value.isWellFormed()) {
    ctx.addIssue({ code: "custom", message: "is not valid Unicode text" });
  }
});

const bodyText = z.string(typeError("text")).superRefine((value, ctx) => {
  // A body may have line breaks (it is encoded, never a header), but NUL breaks SMTP peers.
  if (value.includes("\u0000")) {
    ctx.addIssue({ code: "custom", message: "must not contain NUL characters" });
  } else if (!value.isWellFormed()) {
    ctx.addIssue({ code: "custom", message: "is not valid Unicode text" });
  }
});

const sendRequestSchema = z.strictObject({
  mailbox: headerText
    .refine((value) => value.trim() !== "", "is required")
    .refine(
      (value) => value.length <= MAX_MAILBOX_LENGTH,
      `must be at most ${MAX_MAILBOX_LENGTH} characters`,
    ),
  to: addressList.min(1, "needs at least one address"),
  cc: addressList.optional(),
  bcc: addressList.optional(),
  replyTo: addressEntry.optional(),
  subject: headerText
    .refine(
      (value) => value.length <= MAX_SUBJECT_LENGTH || codePointLength(value) <= MAX_SUBJECT_LENGTH,
      `must be at most ${MAX_SUBJECT_LENGTH} characters`,
    )
    .optional(),
  text: bodyText.optional(),
  html: bodyText.optional(),
});

const RECIPIENT_LISTS = ["to", "cc", "bcc"] as const;
// For a body over the recipient cap: the lists' types are checked, not one of their entries.
const listType = z.custom<unknown[]>(Array.isArray, typeError("a list of addresses"));
const listTypesSchema = sendRequestSchema.extend({
  to: listType,
  cc: listType.optional(),
  bcc: listType.optional(),
});

type Outcome = { problems: FieldProblem[]; isTooLarge: boolean; value?: SendRequest };

/** Validates an already-decoded JSON body. Never throws. */
export function parseSendRequest(body: unknown): SendRequestResult {
  const outcome = safely(() => validate(body));
  return outcome.value === undefined
    ? { ok: false, problems: outcome.problems }
    : { ok: true, value: outcome.value };
}

/**
 * Validates a raw HTTP body with its Content-Type header, and says which status a refusal
 * deserves: 415 for a body that is not JSON, 413 for one over the size caps, 400 otherwise.
 * Never throws.
 */
export function parseSendRequestText(
  raw: string,
  contentType: string | null,
): SendRequestTextResult {
  const decoded = decodeSendRequestText(raw, contentType);
  return decoded.ok ? validateSendRequest(decoded.body) : decoded;
}

/**
 * Reads a raw HTTP body as a JSON object, refusing it as `parseSendRequestText` would (415,
 * 413, 400) without validating a field: linear in the body's size, and no HTML is parsed.
 */
export function decodeSendRequestText(
  raw: string,
  contentType: string | null,
): { ok: true; body: Record<string, unknown> } | Extract<SendRequestTextResult, { ok: false }> {
  if (!isJsonContentType(contentType)) {
    return refuse(415, "content-type", "must be application/json (UTF-8)");
  }
  // A UTF-16 code unit is never more than it is in UTF-8, so the cheap length test first.
  if (raw.length > MAX_REQUEST_BYTES || utf8Length(raw, MAX_REQUEST_BYTES) > MAX_REQUEST_BYTES) {
    return refuse(413, "body", `must be at most ${MAX_REQUEST_BYTES} bytes`);
  }
  if (raw.trim() === "") return refuse(400, "body", "is empty; send a JSON object");
  // JSON.parse's cost follows the number of values, not the bytes: 21 MB of `[],` held the
  // thread for seconds and 300 MB of heap. A message has a few dozen values; its size is text.
  if (hasMoreJsonValues(raw, MAX_JSON_VALUES)) {
    return refuse(
      400,
      "body",
      `must hold at most ${MAX_JSON_VALUES} JSON values (arrays, objects and list items); a message has at most ${MAX_RECIPIENTS} recipients`,
    );
  }

  let body: unknown;
  try {
    body = JSON.parse(raw);
  } catch {
    // The parser's own message quotes the input back; plain words are enough.
    return refuse(400, "body", "is not valid JSON");
  }
  if (!isRecord(body)) return refuse(400, "body", "must be a JSON object");
  return { ok: true, body };
}

/** Validates a decoded body, with the status a refusal deserves (413 past a size cap). */
export function validateSendRequest(body: unknown): SendRequestTextResult {
  const outcome = safely(() => validate(body));
  if (outcome.value !== undefined) return { ok: true, value: outcome.value };
  return { ok: false, status: outcome.isTooLarge ? 413 : 400, problems: outcome.problems };
}

/**
 * The mailbox a decoded body names, when it is one the full validation would accept; null
 * otherwise. Cheap, so the mailbox can be looked up before the body is validated in full.
 * Never throws.
 */
export function mailboxSelectorOf(body: unknown): string | null {
  try {
    if (!isRecord(body) || !Object.hasOwn(body, "mailbox")) return null;
    const parsed = sendRequestSchema.shape.mailbox.safeParse(body.mailbox);
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}

/** Maps a refusal from `parseSendRequestText` to its problem JSON. */
export function sendRequestProblem(
  failure: Extract<SendRequestTextResult, { ok: false }>,
): ProblemDetails {
  if (failure.status === 415) {
    return problemJson(415, "Unsupported content type", failure.problems, {
      type: PROBLEM_TYPES.unsupportedMediaType,
    });
  }
  if (failure.status === 413) {
    return problemJson(413, "Message too large", failure.problems, {
      type: PROBLEM_TYPES.messageTooLarge,
    });
  }
  return problemJson(400, "Invalid message", failure.problems, {
    type: PROBLEM_TYPES.invalidMessage,
  });
}

function validate(body: unknown): Outcome {
  if (!isRecord(body)) {
    return { problems: [{ field: "body", message: "must be a JSON object" }], isTooLarge: false };
  }
  const problems: FieldProblem[] = [];
  // JSON.parse turns "__proto__" into an own key. We never copy the input wholesale, but
  // refuse it by name rather than rely on the schema's unknown-key check to catch it.
  if (Object.hasOwn(body, "__proto__")) {
    problems.push({ field: "__proto__", message: UNKNOWN_FIELD_HINTS.get("__proto__") ?? "" });
  }

  const recipientCount = countRecipients(body);
  // Over the cap, refused on the count before any entry is parsed: a body under the byte cap
  // holds millions of tiny entries, and each would cost a parse and a problem of its own.
  const parsed = recipientCount > MAX_RECIPIENTS ? undefined : sendRequestSchema.safeParse(body);
  const fieldProblems =
    parsed === undefined
      ? [...problemsBesideEntries(body), recipientCapProblem(recipientCount)]
      : (parsed.error?.issues.flatMap(toFieldProblems) ?? []);
  for (const problem of fieldProblems) problems.push(problem);

  const size = bodySize(body);
  if (size > MAX_BODY_BYTES) {
    problems.push({
      field: hasOwnString(body, "text") ? "text" : "html",
      message: `text and html together must be at most ${MAX_BODY_BYTES} bytes (10 MB)`,
    });
  }
  const htmlSize = hasOwnString(body, "html")
    ? utf8Length(body.html as string, MAX_HTML_BYTES + 1)
    : 0;
  if (htmlSize > MAX_HTML_BYTES) {
    problems.push({ field: "html", message: HTML_TOO_LARGE });
  }
  const isTooLarge = size > MAX_BODY_BYTES || htmlSize > MAX_HTML_BYTES;
  if (!Object.hasOwn(body, "text") && !Object.hasOwn(body, "html")) {
    problems.push({ field: "text", message: "give a text or an html body (or both)" });
  }
  if (problems.length > 0 || parsed?.success !== true) {
    return { problems: capProblems(problems), isTooLarge };
  }

  const data = parsed.data;
  // Sanitised last: it is the expensive step, and only worth doing for a sendable message.
  const sanitized = data.html === undefined ? undefined : sanitizeMessageHtml(data.html);
  if (sanitized !== undefined && !sanitized.ok) {
    return { problems: [{ field: "html", message: sanitized.message }], isTooLarge: false };
  }
  const html = sanitized?.html;
  if ((data.text ?? "") === "" && (html ?? "").trim() === "") {
    const field = data.html === undefined ? "text" : "html";
    const message =
      data.html === undefined
        ? "must not be empty"
        : "has nothing left to send once unsafe parts are removed";
    return { problems: [{ field, message }], isTooLarge: false };
  }

  const value: SendRequest = {
    mailbox: data.mailbox,
    to: data.to,
    cc: data.cc ?? [],
    bcc: data.bcc ?? [],
    subject: data.subject ?? "",
  };
  if (data.replyTo !== undefined) value.replyTo = data.replyTo;
  if (data.text !== undefined) value.text = data.text;
  if (html !== undefined) value.html = html;
  return { problems: [], isTooLarge: false, value };
}

function countRecipients(body: Record<string, unknown>): number {
  return RECIPIENT_LISTS.reduce((total, key) => {
    const list = Object.hasOwn(body, key) ? body[key] : undefined;
    return total + (Array.isArray(list) ? list.length : 0);
  }, 0);
}

function recipientCapProblem(count: number): FieldProblem {
  return {
    field: "to",
    message: `at most ${MAX_RECIPIENTS} recipients are allowed across to, cc and bcc together (got ${count})`,
  };
}

/**
 * The problems of a body over the recipient cap, found without parsing one address: every
 * other field in full, each list's type, and a list's first entry that is not text.
 */
function problemsBesideEntries(body: Record<string, unknown>): FieldProblem[] {
  const issues = [...(listTypesSchema.safeParse(body).error?.issues ?? [])];
  for (const key of RECIPIENT_LISTS) {
    const list = Object.hasOwn(body, key) ? body[key] : undefined;
    if (!Array.isArray(list)) continue;
    const index = list.findIndex((entry) => typeof entry !== "string");
    const notText = index === -1 ? [] : (addressEntry.safeParse(list[index]).error?.issues ?? []);
    for (const issue of notText) issues.push({ ...issue, path: [key, index] });
  }
  return issues.flatMap(toFieldProblems);
}

function bodySize(body: Record<string, unknown>): number {
  let size = 0;
  for (const key of ["text", "html"]) {
    const value = Object.hasOwn(body, key) ? body[key] : undefined;
    if (typeof value === "string") size += utf8Length(value, MAX_BODY_BYTES + 1);
  }
  return size;
}

function safely(run: () => Outcome): Outcome {
  try {
    return run();
  } catch {
    // A hostile object (a throwing getter, a proxy) must end as a 400, not a 500.
    return { problems: [{ field: "body", message: "could not be read" }], isTooLarge: false };
  }
}

function refuse(
  status: 400 | 413 | 415,
  field: string,
  message: string,
): Extract<SendRequestTextResult, { ok: false }> {
  return { ok: false, status, problems: [{ field, message }] };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function hasOwnString(body: Record<string, unknown>, key: string): boolean {
  return Object.hasOwn(body, key) && typeof body[key] === "string";
}

function isJsonContentType(contentType: string | null): boolean {
  if (contentType === null) return false;
  const [mediaType = "", ...parameters] = contentType.split(";");
  if (mediaType.trim().toLowerCase() !== "application/json") return false;
  // The route decodes the body as UTF-8; a body declared in another charset would be misread.
  return parameters.every((parameter) => {
    const [name = "", charset = ""] = parameter.split("=");
    if (name.trim().toLowerCase() !== "charset") return true;
    return ["utf-8", "utf8"].includes(charset.trim().replace(/^"|"$/g, "").toLowerCase());
  });
}
