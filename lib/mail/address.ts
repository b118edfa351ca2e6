import type { Address } from "nodemailer";
import addressparser from "nodemailer/lib/addressparser";
import { collapseSpaces, hasHeaderControl, utf8Length } from "./text";

// One recipient entry → one address, by our own strict grammar (ARCHITECTURE.md, Security
// practices 10); nodemailer's parser must agree with what we read.

export type ParsedAddress = { name?: string; address: string };

const MAX_DISPLAY_NAME_LENGTH = 256;
const MAX_LOCAL_PART_BYTES = 64;
const MAX_DOMAIN_BYTES = 255;
const MAX_LABEL_LENGTH = 63;
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

/** An entry validated by parseAddress, as nodemailer takes it. */
export function toAddress(entry: string): Address {
  const parsed = parseAddress(entry);
  if (!parsed.ok) throw new TypeError("toNodemailerFields: an address was not validated");
  return { name: parsed.value.name ?? "", address: parsed.value.address };
}
