import { randomBytes } from "node:crypto";
import { inspect } from "node:util";
import { describe, expect, it } from "vitest";
import { generateKeySpec, KeyringError, parseKeyring } from "./keyring";

const b64 = (bytes: number) => randomBytes(bytes).toString("base64");

function keyringError(spec: string): KeyringError {
  try {
    parseKeyring(spec);
  } catch (error) {
    expect(error).toBeInstanceOf(KeyringError);
    return error as KeyringError;
  }
  throw new Error("parseKeyring accepted the spec");
}

// Neither the whole key nor a recognisable slice of it may appear in the message.
function expectNoKeyMaterial(message: string, ...keys: string[]) {
  for (const key of keys.filter((k) => k !== "")) {
    expect(message).not.toContain(key);
    for (let i = 0; i + 8 <= key.length; i++) {
      expect(message).not.toContain(key.slice(i, i + 8));
    }
  }
}

describe("parseKeyring", () => {
  it("makes the first entry current and every entry readable", () => {
    const a = b64(32);
    const b = b64(32);
    const keyring = parseKeyring(`new:${a},old:${b}`);
    expect(keyring.current.id).toBe("new");
    expect(keyring.current.key.equals(Buffer.from(a, "base64"))).toBe(true);
    expect([...keyring.byId.keys()]).toEqual(["new", "old"]);
    expect(keyring.byId.get("old")?.equals(Buffer.from(b, "base64"))).toBe(true);
  });

  it("tolerates whitespace around entries (specs come from files and env)", () => {
    const keyring = parseKeyring(` a : ${b64(32)} ,\n b_2-X:${b64(32)}\n`);
    expect([...keyring.byId.keys()]).toEqual(["a", "b_2-X"]);
  });

  it("rejects an empty spec", () => {
    expect(keyringError("").message).toMatch(/empty/);
    expect(keyringError("  \n").message).toMatch(/empty/);
  });

  it("rejects a stray comma, naming the entry", () => {
    const key = b64(32);
    const error = keyringError(`a:${key},`);
    expect(error.message).toMatch(/entry 2 is empty/);
    expect(error.entry).toBe(2);
    expectNoKeyMaterial(error.message, key);
  });

  it("rejects an entry without an id and does not quote it", () => {
    const key = b64(32);
    const error = keyringError(key);
    expect(error.message).toMatch(/entry 1 is not of the form id:base64key/);
    expectNoKeyMaterial(error.message, key);
  });

  it("rejects bad base64", () => {
    const good = b64(32);
    for (const bad of ["not*base64!", `${good.slice(0, -1)}`, `${good}==`, `${good} x`, ""]) {
      const error = keyringError(`ok:${b64(32)},k2:${bad}`);
      expect(error.message).toMatch(/entry 2 \(id "k2"\): key is not valid padded base64/);
      expectNoKeyMaterial(error.message, bad.length >= 8 ? bad : "");
    }
  });

  it("rejects a 16-byte key and a 33-byte key, saying how long it was", () => {
    const short = b64(16);
    const error = keyringError(`short:${short}`);
    expect(error.message).toBe(
      'token key entry 1 (id "short"): key is 16 bytes, AES-256 needs exactly 32',
    );
    expectNoKeyMaterial(error.message, short);
    const long = b64(33);
    expect(keyringError(`long:${long}`).message).toMatch(/33 bytes/);
  });

  it("rejects an all-zero placeholder key", () => {
    const zero = Buffer.alloc(32).toString("base64");
    expect(keyringError(`z:${zero}`).message).toMatch(/all zero bytes/);
  });

  it("rejects bad ids without quoting them", () => {
    const key = b64(32);
    for (const id of ["", "has space", "dot.ted", "x".repeat(33), "é"]) {
      const error = keyringError(`good:${b64(32)},${id}:${key}`);
      expect(error.message).toMatch(/entry 2 has an invalid key id/);
      expect(error.entry).toBe(2);
      expectNoKeyMaterial(error.message, key);
      if (id.length > 1) expect(error.message).not.toContain(id);
    }
  });

  it("does not quote a key pasted in the id position (key:id)", () => {
    const key = b64(32);
    const error = keyringError(`${key}:k1`);
    expect(error.message).toMatch(/entry 1 has an invalid key id/);
    expectNoKeyMaterial(error.message, key);
  });

  it("rejects duplicate ids", () => {
    const a = b64(32);
    const b = b64(32);
    const error = keyringError(`k1:${a},k2:${b64(32)},k1:${b}`);
    expect(error.message).toBe('token key entry 3 (id "k1") reuses the id of entry 1');
    expectNoKeyMaterial(error.message, a, b);
  });

  it("rejects the same key under two ids (a rotation that rotates nothing)", () => {
    const key = b64(32);
    const error = keyringError(`new:${key},old:${key}`);
    expect(error.message).toMatch(/entry 2 \(id "old"\) has the same key as id "new"/);
    expectNoKeyMaterial(error.message, key);
  });

  it("does not reveal keys when logged or serialised", () => {
    const key = b64(32);
    const keyring = parseKeyring(`k1:${key},k0:${b64(32)}`);
    const hex = keyring.current.key.toString("hex");
    for (const shown of [
      inspect(keyring, { depth: 10 }),
      inspect(keyring.current),
      JSON.stringify(keyring),
      JSON.stringify(keyring.current),
      String(keyring),
    ]) {
      expectNoKeyMaterial(shown, key, hex);
      expect(shown).not.toMatch(/<Buffer/);
    }
    expect(inspect(keyring)).toContain("k1");
    expect(JSON.parse(JSON.stringify(keyring))).toEqual({ current: "k1", ids: ["k1", "k0"] });
  });
});

describe("generateKeySpec", () => {
  it("produces a parseable spec with a dated default id and a fresh 32-byte key", () => {
    const spec = generateKeySpec();
    const keyring = parseKeyring(spec);
    const today = new Date().toISOString().slice(0, 10).replaceAll("-", "");
    expect(keyring.current.id).toMatch(new RegExp(`^k${today}[0-9a-f]{4}$`));
    expect(keyring.current.key).toHaveLength(32);
    const other = parseKeyring(generateKeySpec());
    expect(other.current.key.equals(keyring.current.key)).toBe(false);
  });

  it("uses a given id and validates it", () => {
    expect(parseKeyring(generateKeySpec("prod-2026_01")).current.id).toBe("prod-2026_01");
    expect(() => generateKeySpec("bad id")).toThrow(KeyringError);
    expect(() => generateKeySpec("")).toThrow(KeyringError);
  });
});
