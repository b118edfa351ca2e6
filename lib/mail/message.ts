// The one validator for outgoing messages (HTTP send route and dashboard test sends).
// Framework-free on purpose: it may also give form hints in the browser later.
//
// Security model item 10: structured fields only. Every header value is refused when it
// holds a line break or any other control character, every recipient entry must be exactly
// one address, lengths and counts are bounded, and HTML is sanitised. Nothing here throws
// on bad input; it collects every problem so a caller can fix them all in one round trip.

import type { Address } from "nodemailer";
import addressparser from "nodemailer/lib/addressparser";
import sanitizeHtml from "sanitize-html";
import * as z from "zod";
import { type FieldProblem, PROBLEM_TYPES, type ProblemDetails, problemJson } from "./problem";

export type { FieldProblem } from "./problem";
export { problemJson, problemResponse } from "./problem";

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

export type ParsedAddress = { name?: string; address: string };

export type SendRequestResult =
  | { ok: true; value: SendRequest }
  | { ok: false; problems: FieldProblem[] };

export type SendRequestTextResult =
  | { ok: true; value: SendRequest }
  | { ok: false; status: 400 | 413 | 415; problems: FieldProblem[] };

/** The message fields handed to nodemailer. `from` is set by the send chokepoint only. */
export type NodemailerFields = {
  to: Address[];
  cc: Address[];
  bcc: Address[];
  replyTo?: Address;
  subject: string;
  text?: string;
  html?: string;
};

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
const HTML_TOO_LARGE = `must be at most ${MAX_HTML_BYTES} bytes (512 KB)`;
const MAX_DISPLAY_NAME_LENGTH = 256;
const MAX_LOCAL_PART_BYTES = 64;
const MAX_DOMAIN_BYTES = 255;
const MAX_LABEL_LENGTH = 63;
// Reporting is bounded too: a body of a million unknown keys must not yield a 50 MB answer.
const MAX_PROBLEMS = 100;
const MAX_FIELD_NAME_LENGTH = 64;
// Longest sensible entry: a quoted name, an address of 320 and the brackets. Anything longer
// is refused before any parser spends time on it.
const MAX_ENTRY_LENGTH = MAX_DISPLAY_NAME_LENGTH + 400;

// RFC 5322 atext, ASCII only: an internationalised local part needs SMTPUTF8, which the
// providers we send through do not promise. International domains are fine (punycoded).
const LOCAL_PART = /^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$/;
const DOMAIN_LABEL = /^[\p{L}\p{N}](?:[\p{L}\p{N}\p{M}-]*[\p{L}\p{N}\p{M}])?$/u;
// Characters that mean something in an address list; inside a quoted name they are
// harmless, unquoted they would make the entry read as something other than one mailbox.
const UNQUOTED_NAME = /^[^()<>[\]:;@\\,"]+$/;

const UNKNOWN_FIELD_HINTS = new Map<string, string>([
  ["from", "is not accepted: messages are always sent from the mailbox"],
  ["sender", "is not accepted: messages are always sent from the mailbox"],
  ["headers", "is not accepted: raw headers cannot be set"],
  ["envelope", "is not accepted: the SMTP envelope is built from to, cc and bcc"],
  ["attachments", "is not accepted: attachments are not supported"],
  ["__proto__", "is not accepted"],
]);

/** C0 controls (tab, CR and LF included), DEL, C1 controls and the Unicode line separators. */
function isHeaderControl(code: number): boolean {
  return code < 0x20 || (code >= 0x7f && code <= 0x9f) || code === 0x2028 || code === 0x2029;
}

function hasHeaderControl(value: string): boolean {
  for (let i = 0; i < value.length; i++) {
    if (isHeaderControl(value.charCodeAt(i))) return true;
  }
  return false;
}

/** UTF-8 length, stopping early once past `limit` so a huge string costs no more than needed. */
function utf8Length(value: string, limit = Number.POSITIVE_INFINITY): number {
  let bytes = 0;
  for (let i = 0; i < value.length && bytes <= limit; i++) {
    const code = value.charCodeAt(i);
    if (code < 0x80) bytes += 1;
    else if (code < 0x800) bytes += 2;
    else if (code >= 0xd800 && code <= 0xdbff && i + 1 < value.length) {
      const next = value.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        bytes += 4;
        i++;
      } else bytes += 3;
    } else bytes += 3;
  }
  return bytes;
}

function codePointLength(value: string): number {
  let count = 0;
  for (const _ of value) count++;
  return count;
}

function collapseSpaces(value: string): string {
  return value.trim().replace(/\s+/g, " ");
}

const NOT_ONE_ADDRESS =
  "must hold exactly one address; give each recipient as its own entry (lists and groups are not allowed)";

/**
 * Reads one recipient entry: a bare address, `Name <address>` or `"Name" <address>`.
 * Our own strict grammar decides; nodemailer's parser must then agree, so that what we
 * validated is what nodemailer would have read.
 */
export function parseAddress(
  entry: string,
): { ok: true; value: ParsedAddress } | { ok: false; message: string } {
  if (hasHeaderControl(entry)) {
    return { ok: false, message: "must not contain line breaks or other control characters" };
  }
  if (!entry.isWellFormed()) return { ok: false, message: "is not valid Unicode text" };
  const trimmed = entry.trim();
  if (trimmed === "") return { ok: false, message: "must not be empty" };
  if (trimmed.length > MAX_ENTRY_LENGTH) return { ok: false, message: "is too long" };

  const seen = addressparser(trimmed);
  const [only] = seen;
  if (seen.length !== 1 || only === undefined || only.group !== undefined) {
    return { ok: false, message: NOT_ONE_ADDRESS };
  }

  const split = splitNameAndAddress(trimmed);
  if (!split.ok) return split;
  const addressProblem = checkAddrSpec(split.address);
  if (addressProblem !== undefined) return { ok: false, message: addressProblem };

  if (only.address !== split.address || collapseSpaces(only.name) !== (split.name ?? "")) {
    return { ok: false, message: NOT_ONE_ADDRESS };
  }
  const at = split.address.lastIndexOf("@");
  // Domains are case-insensitive; the local part is left alone because it need not be.
  const address = `${split.address.slice(0, at)}@${split.address.slice(at + 1).toLowerCase()}`;
  return {
    ok: true,
    value: split.name === undefined ? { address } : { name: split.name, address },
  };
}

function splitNameAndAddress(
  entry: string,
): { ok: true; name?: string; address: string } | { ok: false; message: string } {
  const hasAngle = entry.includes("<") || entry.includes(">");
  if (!hasAngle) return { ok: true, address: entry };

  const match = /^([^<>]*)<([^<>]*)>$/.exec(entry);
  if (match === null) {
    return {
      ok: false,
      message: 'angle brackets must enclose exactly one address, as in "Name <name@example.com>"',
    };
  }
  const rawName = (match[1] ?? "").trim();
  const address = (match[2] ?? "").trim();
  const name = readDisplayName(rawName);
  if (!name.ok) return name;
  return name.value === "" ? { ok: true, address } : { ok: true, name: name.value, address };
}

function readDisplayName(
  raw: string,
): { ok: true; value: string } | { ok: false; message: string } {
  let inner = raw;
  if (raw.startsWith('"')) {
    // No escapes: a name with a quote or backslash in it gains nothing and is where
    // parsers disagree.
    if (raw.length < 2 || !raw.endsWith('"') || /["\\]/.test(raw.slice(1, -1))) {
      return { ok: false, message: 'the display name must be one quoted text without " or \\' };
    }
    inner = raw.slice(1, -1);
  } else if (raw !== "" && !UNQUOTED_NAME.test(raw)) {
    return {
      ok: false,
      message: 'put the display name in double quotes when it contains , ; : @ ( ) [ ] or "',
    };
  }
  const value = collapseSpaces(inner);
  if (value.length > MAX_DISPLAY_NAME_LENGTH) {
    return {
      ok: false,
      message: `the display name must be at most ${MAX_DISPLAY_NAME_LENGTH} characters`,
    };
  }
  return { ok: true, value };
}

function checkAddrSpec(address: string): string | undefined {
  const notAnAddress = "is not an email address like name@example.com";
  if (/\s/.test(address)) return "must not contain spaces in the address";
  const parts = address.split("@");
  if (parts.length !== 2) {
    return parts.length < 2 ? notAnAddress : "must contain exactly one @ in the address";
  }
  const [local = "", domain = ""] = parts;
  if (local === "" || domain === "") return notAnAddress;
  if (utf8Length(local) > MAX_LOCAL_PART_BYTES) {
    return `the part before @ must be at most ${MAX_LOCAL_PART_BYTES} characters`;
  }
  if (!LOCAL_PART.test(local)) return "the part before @ has characters that are not allowed";
  if (utf8Length(domain) > MAX_DOMAIN_BYTES) {
    return `the domain must be at most ${MAX_DOMAIN_BYTES} characters`;
  }
  const labels = domain.split(".");
  // A single-label domain (user@localhost) or an IP-like one is never a public mailbox.
  const tld = labels[labels.length - 1] ?? "";
  if (labels.length < 2 || !/\p{L}/u.test(tld)) return "the domain must be a full domain name";
  for (const label of labels) {
    if (label.length > MAX_LABEL_LENGTH || !DOMAIN_LABEL.test(label)) {
      return "the domain may hold only letters, digits, hyphens and dots";
    }
  }
  return undefined;
}

/** Canonical text form; `parseAddress` reads it back to the same value. */
export function formatAddress({ name, address }: ParsedAddress): string {
  return name === undefined ? address : `"${name}" <${address}>`;
}

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

// Longest style attribute that is parsed at all. A longer one is dropped whole before the CSS
// parser sees it, so the parser's cost per attribute stays bounded; real mail keeps an inline
// style to a few hundred characters.
export const MAX_STYLE_ATTRIBUTE_LENGTH = 1_000;
// Longest value tried against the patterns below (a long font-family list is ~130).
export const MAX_STYLE_VALUE_LENGTH = 200;
// The HTML parser keeps its open elements in an array it shifts and searches, which costs
// time in proportion to the nesting depth at every tag: without a bound, deep nesting makes
// parsing quadratic (160,000 nested <b> took 6.7 s). Newsletter tables nest a few dozen deep.
export const MAX_HTML_DEPTH = 100;

/**
 * Anchors a style value pattern and bounds the text it runs on. Each pattern must have one
 * way at most to match any text: repeated values are separated by required whitespace or a
 * comma and no quantified part can also match what follows it, so a test is linear.
 */
function styleValue(pattern: RegExp): RegExp {
  return new RegExp(
    `^(?=[\\s\\S]{0,${MAX_STYLE_VALUE_LENGTH}}$)(?:${pattern.source})$`,
    pattern.flags,
  );
}

const COLOR = [
  styleValue(/#[0-9a-f]{3,8}/i),
  styleValue(/[a-z]{1,32}/i),
  // rgb(1, 2, 3) and rgba(1, 2, 3, 0.5), each number up to 3 digits with an optional fraction
  // and percent sign; or the space-separated rgb(1 2 3 / 50%).
  styleValue(
    /rgba?\(\s*(?:\d{1,3}(?:\.\d{1,4})?|\.\d{1,4})%?(?:\s*,\s*(?:\d{1,3}(?:\.\d{1,4})?|\.\d{1,4})%?){2,3}\s*\)/i,
  ),
  styleValue(
    /rgba?\(\s*(?:\d{1,3}(?:\.\d{1,4})?|\.\d{1,4})%?(?:\s+(?:\d{1,3}(?:\.\d{1,4})?|\.\d{1,4})%?){2}(?:\s*\/\s*(?:\d{1,3}(?:\.\d{1,4})?|\.\d{1,4})%?)?\s*\)/i,
  ),
];

/**
 * The inline style properties that pass, each with the values it accepts. Mail HTML leans on
 * inline styles; no allowed value can hold "(" except plain rgb(), so expression(), url() and
 * var() never survive.
 */
export const ALLOWED_STYLES: Record<string, RegExp[]> = {
  color: COLOR,
  "background-color": COLOR,
  "font-weight": [styleValue(/normal|bold|bolder|lighter|\d{3}/i)],
  "font-style": [styleValue(/normal|italic|oblique/i)],
  "font-size": [styleValue(/\d+(?:\.\d+)?(?:px|pt|em|rem|%)/i)],
  "font-family": [styleValue(/[\w\s,'"-]+/)],
  "text-align": [styleValue(/left|right|center|justify/i)],
  "text-decoration": [styleValue(/none|underline|line-through/i)],
  "line-height": [styleValue(/\d+(?:\.\d+)?(?:px|pt|em|rem|%)?/i)],
  // One to four lengths, whitespace between them.
  margin: [
    styleValue(/-?\d+(?:\.\d+)?(?:px|pt|em|rem|%)?(?:\s+-?\d+(?:\.\d+)?(?:px|pt|em|rem|%)?){0,3}/i),
  ],
  padding: [
    styleValue(/\d+(?:\.\d+)?(?:px|pt|em|rem|%)?(?:\s+\d+(?:\.\d+)?(?:px|pt|em|rem|%)?){0,3}/i),
  ],
};

const sanitizeOptions: sanitizeHtml.IOptions = {
  // Listed, not taken from the library defaults, so an upgrade cannot widen what passes.
  allowedTags: (
    "a abbr b blockquote br caption cite code col colgroup dd del div dl dt em h1 h2 h3 h4 " +
    "h5 h6 hr i img ins li ol p pre q s small span strong sub sup table tbody td tfoot th " +
    "thead tr u ul"
  ).split(" "),
  allowedAttributes: {
    "*": ["dir", "lang", "title", "style"],
    a: ["href", "name"],
    img: ["src", "alt", "width", "height"],
    td: ["colspan", "rowspan", "align", "valign"],
    th: ["colspan", "rowspan", "align", "valign", "scope"],
  },
  allowedStyles: { "*": ALLOWED_STYLES },
  // Runs on every tag before its attributes are filtered, so an over-long style attribute
  // never reaches the CSS parser.
  transformTags: {
    "*": (tagName, attribs) => {
      if ((attribs.style ?? "").length <= MAX_STYLE_ATTRIBUTE_LENGTH) return { tagName, attribs };
      const { style: _dropped, ...rest } = attribs;
      return { tagName, attribs: rest };
    },
  },
  allowedSchemes: ["http", "https", "mailto"],
  allowedSchemesByTag: { img: ["http", "https"] },
  allowProtocolRelative: false,
  disallowedTagsMode: "discard",
  // These tags' content is code or chrome, not prose: drop it along with the tag.
  nonTextTags: ["script", "style", "textarea", "option", "noscript", "title", "template"],
};

class TooDeeplyNested extends Error {}

/**
 * Sanitises message HTML, or refuses it when elements nest deeper than MAX_HTML_DEPTH.
 * The parser reports every element it opens and closes (implied ones and void elements
 * included), so the running count is the depth of its open-element list; parsing stops at
 * the first element past the bound, before the list can grow further.
 */
export function sanitizeMessageHtml(
  html: string,
): { ok: true; html: string } | { ok: false; message: string } {
  let depth = 0;
  try {
    const clean = sanitizeHtml(html, {
      ...sanitizeOptions,
      onOpenTag: () => {
        depth++;
        if (depth > MAX_HTML_DEPTH) throw new TooDeeplyNested();
      },
      onCloseTag: () => {
        depth--;
      },
    });
    return { ok: true, html: clean };
  } catch (error) {
    if (!(error instanceof TooDeeplyNested)) throw error;
    return { ok: false, message: `must not nest elements more than ${MAX_HTML_DEPTH} deep` };
  }
}

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

/**
 * The nodemailer message fields, built only from a validated request. Addresses go in as
 * objects so nodemailer never re-parses a string; there is deliberately no way to pass
 * `from`, `headers`, `envelope`, `attachments` or prepared header values.
 * Throws on a value that did not come from `parseSendRequest`: that is a programming error.
 */
export function toNodemailerFields(value: SendRequest): NodemailerFields {
  // SendRequest is a plain type anyone can build, so the header-bearing parts are checked
  // again here, at the last step before nodemailer.
  if (hasHeaderControl(value.subject) || codePointLength(value.subject) > MAX_SUBJECT_LENGTH) {
    throw new TypeError("toNodemailerFields: subject was not validated");
  }
  if (value.to.length + value.cc.length + value.bcc.length > MAX_RECIPIENTS) {
    throw new TypeError("toNodemailerFields: recipients were not validated");
  }
  const fields: NodemailerFields = {
    to: value.to.map(toAddress),
    cc: value.cc.map(toAddress),
    bcc: value.bcc.map(toAddress),
    subject: value.subject,
  };
  if (value.replyTo !== undefined) fields.replyTo = toAddress(value.replyTo);
  if (value.text !== undefined) fields.text = value.text;
  if (value.html !== undefined) fields.html = value.html;
  return fields;
}

function toAddress(entry: string): Address {
  const parsed = parseAddress(entry);
  if (!parsed.ok) throw new TypeError("toNodemailerFields: an address was not validated");
  return { name: parsed.value.name ?? "", address: parsed.value.address };
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

  const parsed = sendRequestSchema.safeParse(body);
  if (!parsed.success) problems.push(...parsed.error.issues.flatMap(toFieldProblems));

  problems.push(...recipientCountProblems(body));
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
  if (problems.length > 0 || !parsed.success) {
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

function recipientCountProblems(body: Record<string, unknown>): FieldProblem[] {
  const count = ["to", "cc", "bcc"].reduce((total, key) => {
    const list = Object.hasOwn(body, key) ? body[key] : undefined;
    return total + (Array.isArray(list) ? list.length : 0);
  }, 0);
  if (count <= MAX_RECIPIENTS) return [];
  return [
    {
      field: "to",
      message: `at most ${MAX_RECIPIENTS} recipients are allowed across to, cc and bcc together (got ${count})`,
    },
  ];
}

function bodySize(body: Record<string, unknown>): number {
  let size = 0;
  for (const key of ["text", "html"]) {
    const value = Object.hasOwn(body, key) ? body[key] : undefined;
    if (typeof value === "string") size += utf8Length(value, MAX_BODY_BYTES + 1);
  }
  return size;
}

function toFieldProblems(issue: z.core.$ZodIssue): FieldProblem[] {
  if (issue.code === "unrecognized_keys") {
    return issue.keys
      .filter((key) => key !== "__proto__")
      .map((key) => ({
        field: fieldName([...issue.path, key]),
        message: UNKNOWN_FIELD_HINTS.get(key) ?? "is not a field this API accepts",
      }));
  }
  return [{ field: fieldName(issue.path), message: issue.message }];
}

/** JSON-pointer-style path without the leading slash, escaped as RFC 6901 says. */
function fieldName(path: readonly PropertyKey[]): string {
  if (path.length === 0) return "body";
  return path
    .map((segment) => {
      const text = String(segment).replaceAll("~", "~0").replaceAll("/", "~1");
      // Unknown keys are the caller's text; a bounded echo is enough to find them.
      return text.length > MAX_FIELD_NAME_LENGTH
        ? `${text.slice(0, MAX_FIELD_NAME_LENGTH)}…`
        : text;
    })
    .join("/");
}

function capProblems(problems: FieldProblem[]): FieldProblem[] {
  if (problems.length <= MAX_PROBLEMS) return problems;
  return [
    ...problems.slice(0, MAX_PROBLEMS),
    { field: "body", message: `${problems.length - MAX_PROBLEMS} more problems not listed` },
  ];
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
