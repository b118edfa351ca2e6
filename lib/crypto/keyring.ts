import "server-only";
import { randomBytes } from "node:crypto";

/** Key ids end up inside every stored value, so they are kept short and free of separators. */
export const KEY_ID_PATTERN = /^[A-Za-z0-9_-]{1,32}$/;

/** AES-256 needs exactly 32 bytes; anything else is a configuration mistake, never padded. */
export const KEY_BYTES = 32;

// Strict, padded, standard-alphabet base64: Buffer.from(…, "base64") silently skips junk,
// which would turn a mangled key into a different (shorter) key instead of an error.
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

const INSPECT = Symbol.for("nodejs.util.inspect.custom");

export type KeyringEntry = { readonly id: string; readonly key: Buffer };

/**
 * `current` encrypts; every key in `byId` (current included) decrypts. Keyrings built by
 * parseKeyring print and serialise as ids only, so a stray console.log cannot leak keys.
 */
export type Keyring = {
  readonly current: KeyringEntry;
  readonly byId: ReadonlyMap<string, Buffer>;
};

/** Configuration error in a key spec. Messages name the entry, never its key material. */
export class KeyringError extends Error {
  /** 1-based position of the offending entry in the spec, when one entry is at fault. */
  readonly entry: number | undefined;

  constructor(message: string, entry?: number) {
    super(message);
    this.name = "KeyringError";
    this.entry = entry;
  }
}

const ID_RULE = "1-32 characters from A-Z a-z 0-9 _ -";

/**
 * Parses `id:base64key[,id:base64key…]`. The first entry is the encryption key; all of them
 * can decrypt, which is what lets a rotation put the new key first and keep the old one
 * readable until every value has been re-encrypted.
 */
export function parseKeyring(spec: string): Keyring {
  if (typeof spec !== "string" || spec.trim() === "") {
    throw new KeyringError(
      "token key spec is empty: expected id:base64key, optionally followed by ,id:base64key for older keys",
    );
  }

  const byId = new Map<string, Buffer>();
  const positionById = new Map<string, number>();
  const idByKeyHex = new Map<string, string>();
  let current: KeyringEntry | undefined;

  spec.split(",").forEach((raw, index) => {
    const position = index + 1;
    const entry = raw.trim();
    if (entry === "") {
      throw new KeyringError(`token key entry ${position} is empty (stray comma?)`, position);
    }
    const separator = entry.indexOf(":");
    if (separator < 0) {
      // Without a ":" the whole entry may be a bare key, so nothing of it is quoted.
      throw new KeyringError(
        `token key entry ${position} is not of the form id:base64key (no ":" found)`,
        position,
      );
    }
    const id = entry.slice(0, separator).trim();
    const encoded = entry.slice(separator + 1).trim();

    if (!KEY_ID_PATTERN.test(id)) {
      // An invalid id is not quoted either: a reversed "key:id" entry would put the key here.
      throw new KeyringError(
        `token key entry ${position} has an invalid key id (${id === "" ? "it is empty" : `expected ${ID_RULE}`})`,
        position,
      );
    }
    const where = `token key entry ${position} (id "${id}")`;

    const previous = positionById.get(id);
    if (previous !== undefined) {
      throw new KeyringError(`${where} reuses the id of entry ${previous}`, position);
    }
    if (encoded === "" || !BASE64.test(encoded)) {
      throw new KeyringError(`${where}: key is not valid padded base64`, position);
    }
    const key = Buffer.from(encoded, "base64");
    if (key.length !== KEY_BYTES) {
      throw new KeyringError(
        `${where}: key is ${key.length} bytes, AES-256 needs exactly ${KEY_BYTES}`,
        position,
      );
    }
    if (key.every((byte) => byte === 0)) {
      throw new KeyringError(`${where}: key is all zero bytes (a placeholder?)`, position);
    }
    // A "rotation" that reuses the old key under a new id changes nothing; refuse it loudly.
    const keyHex = key.toString("hex");
    const sameKeyId = idByKeyHex.get(keyHex);
    if (sameKeyId !== undefined) {
      throw new KeyringError(`${where} has the same key as id "${sameKeyId}"`, position);
    }

    byId.set(id, key);
    positionById.set(id, position);
    idByKeyHex.set(keyHex, id);
    current ??= redact(
      { id, key },
      () => `KeyringEntry(${id})`,
      () => ({ id }),
    );
  });

  if (current === undefined) {
    throw new KeyringError("token key spec has no entries");
  }
  const ids = [...byId.keys()];
  const currentId = current.id;
  return Object.freeze(
    redact(
      { current, byId: byId as ReadonlyMap<string, Buffer> },
      () => `Keyring(current=${currentId}, ids=[${ids.join(", ")}])`,
      () => ({ current: currentId, ids }),
    ),
  );
}

/**
 * A fresh `id:base64key` entry. The default id carries the creation date (UTC), which makes
 * "which key is this value under" answerable at a glance, plus random hex so two keys made
 * on the same day still differ.
 */
export function generateKeySpec(id?: string): string {
  const keyId = id ?? defaultKeyId(new Date());
  if (!KEY_ID_PATTERN.test(keyId)) {
    throw new KeyringError(`cannot generate a key: invalid key id (expected ${ID_RULE})`);
  }
  return `${keyId}:${randomBytes(KEY_BYTES).toString("base64")}`;
}

function defaultKeyId(now: Date): string {
  const date = now.toISOString().slice(0, 10).replaceAll("-", "");
  return `k${date}${randomBytes(2).toString("hex")}`;
}

function redact<T extends object>(target: T, inspect: () => string, toJSON: () => unknown): T {
  Object.defineProperty(target, INSPECT, { value: inspect, enumerable: false });
  Object.defineProperty(target, "toJSON", { value: toJSON, enumerable: false });
  return target;
}
