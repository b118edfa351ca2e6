import "server-only";
import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import { KEY_ID_PATTERN, type Keyring } from "./keyring";

const VERSION = "v1";
const ALGORITHM = "aes-256-gcm";
const IV_BYTES = 12;
const TAG_BYTES = 16;
// Separates these AADs from any other use of the same keys, should one ever appear.
const AAD_DOMAIN = "mailwarden/token-field";

// 12 bytes -> 16 base64url chars; an empty plaintext still carries a 16-byte tag -> 22 chars.
const ENCRYPTED_SHAPE = /^v1\.[A-Za-z0-9_-]{1,32}\.[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]{22,}$/;
const BASE64URL = /^[A-Za-z0-9_-]*$/;

/** Where a value lives. Bound into the ciphertext, so a value only decrypts in its own cell. */
export type FieldContext = { table: string; column: string; rowId: string };

export type DecryptionFailure = "malformed" | "unknown_key" | "authentication_failed";

/**
 * A stored value could not be decrypted. The message never contains the value, the
 * plaintext or key material; `reason` lets callers tell a missing key from tampering.
 */
export class DecryptionError extends Error {
  readonly reason: DecryptionFailure;

  constructor(reason: DecryptionFailure, message: string) {
    super(message);
    this.name = "DecryptionError";
    this.reason = reason;
  }
}

type Parsed = { keyId: string; iv: Buffer; sealed: Buffer };

/**
 * Encrypts one column value as `v1.<keyId>.<iv>.<ciphertext||tag>` (base64url) under the
 * keyring's current key, with a fresh random IV each time.
 */
export function encryptField(keyring: Keyring, plaintext: string, ctx: FieldContext): string {
  assertContext(ctx);
  // A lone surrogate would be silently replaced by U+FFFD on encoding and not round-trip.
  if (typeof plaintext !== "string" || !plaintext.isWellFormed()) {
    throw new TypeError("plaintext must be a well-formed string");
  }
  const { id, key } = keyring.current;
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv(ALGORITHM, key, iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(associatedData(id, ctx));
  const sealed = Buffer.concat([
    cipher.update(plaintext, "utf8"),
    cipher.final(),
    cipher.getAuthTag(),
  ]);
  return `${VERSION}.${id}.${iv.toString("base64url")}.${sealed.toString("base64url")}`;
}

/** Reverses encryptField; throws DecryptionError for anything but an intact value of this cell. */
export function decryptField(keyring: Keyring, value: string, ctx: FieldContext): string {
  assertContext(ctx);
  const { keyId, iv, sealed } = parse(value);
  const key =
    keyring.byId.get(keyId) ?? (keyId === keyring.current.id ? keyring.current.key : undefined);
  if (key === undefined) {
    throw new DecryptionError("unknown_key", `key ${keyId} is not in the keyring`);
  }
  const ciphertext = sealed.subarray(0, sealed.length - TAG_BYTES);
  const tag = sealed.subarray(sealed.length - TAG_BYTES);
  let plaintext: Buffer;
  try {
    const decipher = createDecipheriv(ALGORITHM, key, iv, { authTagLength: TAG_BYTES });
    decipher.setAAD(associatedData(keyId, ctx));
    decipher.setAuthTag(tag);
    plaintext = Buffer.concat([decipher.update(ciphertext), decipher.final()]);
  } catch {
    // GCM cannot tell a wrong cell from a modified value, and neither should the message.
    throw new DecryptionError(
      "authentication_failed",
      `value under key ${keyId} failed authentication (modified, or not from this table/column/row)`,
    );
  }
  const text = plaintext.toString("utf8");
  plaintext.fill(0);
  return text;
}

/** Shape check only (no key needed): true for anything that looks like encryptField output. */
export function isEncryptedValue(value: string): boolean {
  return typeof value === "string" && ENCRYPTED_SHAPE.test(value);
}

/** The id of the key a value was encrypted under; throws DecryptionError if malformed. */
export function keyIdOf(value: string): string {
  return parse(value).keyId;
}

/** True when a value is readable only through an older key (what a rotation must rewrite). */
export function needsReencryption(keyring: Keyring, value: string): boolean {
  return keyIdOf(value) !== keyring.current.id;
}

/**
 * The value under the current key: unchanged if already there, otherwise decrypted and
 * encrypted afresh for the same cell. Meant for the rotation command.
 */
export function reencryptField(keyring: Keyring, value: string, ctx: FieldContext): string {
  const plaintext = decryptField(keyring, value, ctx);
  return needsReencryption(keyring, value) ? encryptField(keyring, plaintext, ctx) : value;
}

/**
 * One stored cell under the current key, for a key rotation: unchanged when empty or already
 * current; when no key opens it, or it is no sealed value at all, unchanged and named in
 * `unreadable` (never silently dropped, and one bad cell does not stop the rotation).
 */
export function rotateCell(
  keyring: Keyring,
  cell: FieldContext & { value: string | null },
  unreadable: string[],
): string | null {
  if (!cell.value) return cell.value;
  try {
    if (!needsReencryption(keyring, cell.value)) return cell.value;
    return reencryptField(keyring, cell.value, cell);
  } catch (error) {
    if (!(error instanceof DecryptionError)) throw error;
    unreadable.push(`${cell.table}.${cell.column}:${cell.rowId}`);
    return cell.value;
  }
}

function parse(value: string): Parsed {
  // Nothing from the value is quoted unless it has passed a strict pattern: a malformed value
  // is quite possibly a plaintext token written by mistake.
  if (typeof value !== "string") {
    throw new DecryptionError("malformed", "value is not a string");
  }
  const parts = value.split(".");
  const [version, keyId, ivText, sealedText] = parts;
  if (
    parts.length !== 4 ||
    version === undefined ||
    keyId === undefined ||
    ivText === undefined ||
    sealedText === undefined
  ) {
    throw new DecryptionError(
      "malformed",
      "value is not an encrypted field (expected v1.<keyId>.<iv>.<ciphertext>)",
    );
  }
  if (version !== VERSION) {
    const shown = /^v\d{1,4}$/.test(version) ? ` ${version}` : "";
    throw new DecryptionError("malformed", `unsupported encrypted field version${shown}`);
  }
  if (!KEY_ID_PATTERN.test(keyId)) {
    throw new DecryptionError("malformed", "encrypted field has an invalid key id");
  }
  const iv = decodeBase64Url(ivText);
  if (iv === undefined || iv.length !== IV_BYTES) {
    throw new DecryptionError("malformed", "encrypted field has an invalid IV");
  }
  const sealed = decodeBase64Url(sealedText);
  if (sealed === undefined || sealed.length < TAG_BYTES) {
    throw new DecryptionError("malformed", "encrypted field has an invalid ciphertext");
  }
  return { keyId, iv, sealed };
}

// Only the canonical spelling is accepted, so one byte string has exactly one stored form and
// a changed character can never decode to the same bytes.
function decodeBase64Url(text: string): Buffer | undefined {
  if (!BASE64URL.test(text)) return undefined;
  const bytes = Buffer.from(text, "base64url");
  return bytes.toString("base64url") === text ? bytes : undefined;
}

// Length-prefixed fields: unambiguous, so ("ab","c") and ("a","bc") give different AADs,
// and the version and key id are authenticated along with the cell.
function associatedData(keyId: string, ctx: FieldContext): Buffer {
  const fields = [AAD_DOMAIN, VERSION, keyId, ctx.table, ctx.column, ctx.rowId];
  return Buffer.concat(
    fields.flatMap((field) => {
      const bytes = Buffer.from(field, "utf8");
      const length = Buffer.alloc(4);
      length.writeUInt32BE(bytes.length);
      return [length, bytes];
    }),
  );
}

// An empty row id almost always means "encrypted before the row existed", which would bind
// the value to no row at all; refuse rather than produce a value that decrypts anywhere.
function assertContext(ctx: FieldContext): void {
  for (const name of ["table", "column", "rowId"] as const) {
    const part = ctx?.[name];
    if (typeof part !== "string" || part === "" || !part.isWellFormed()) {
      throw new TypeError(`field context ${name} must be a non-empty string`);
    }
  }
}
