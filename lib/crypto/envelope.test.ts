import { describe, expect, it } from "vitest";
import {
  DecryptionError,
  type DecryptionFailure,
  decryptField,
  encryptField,
  type FieldContext,
  isEncryptedValue,
  keyIdOf,
  needsReencryption,
  reencryptField,
  rotateCell,
} from "./envelope";
import { generateKeySpec, type Keyring, parseKeyring } from "./keyring";

const ctx: FieldContext = {
  table: "mailboxes",
  column: "refresh_token",
  rowId: "6f1c1d2e-6a53-4b8e-9a57-1d3f0c9b2a10",
};
const keyring = parseKeyring(generateKeySpec("k1"));
const SECRET = "1//0gLrefresh-token-SECRET-value";

function failure(run: () => unknown): DecryptionError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(DecryptionError);
    return error as DecryptionError;
  }
  throw new Error("expected a DecryptionError");
}

function expectFailure(run: () => unknown, reason: DecryptionFailure): DecryptionError {
  const error = failure(run);
  expect(error.reason).toBe(reason);
  expect(error.message).not.toContain(SECRET);
  return error;
}

function split(value: string) {
  const [version, keyId, iv, sealed] = value.split(".") as [string, string, string, string];
  return {
    version,
    keyId,
    iv: Buffer.from(iv, "base64url"),
    sealed: Buffer.from(sealed, "base64url"),
  };
}

function join(parts: ReturnType<typeof split>): string {
  return [
    parts.version,
    parts.keyId,
    parts.iv.toString("base64url"),
    parts.sealed.toString("base64url"),
  ].join(".");
}

describe("encryptField / decryptField", () => {
  it.each([
    ["an OAuth token", SECRET],
    ["unicode", "Grüße, 東京 🚀 e\u0301 — ✓"],
    ["the empty string", ""],
    ["a long value", "x".repeat(20_000)],
  ])("round-trips %s", (_, plaintext) => {
    const value = encryptField(keyring, plaintext, ctx);
    expect(isEncryptedValue(value)).toBe(true);
    expect(value).not.toContain(plaintext || "\u0000");
    expect(decryptField(keyring, value, ctx)).toBe(plaintext);
  });

  it("writes v1.<keyId>.<12-byte iv>.<ciphertext||16-byte tag>", () => {
    const value = encryptField(keyring, "abc", ctx);
    const parts = split(value);
    expect(parts.version).toBe("v1");
    expect(parts.keyId).toBe("k1");
    expect(parts.iv).toHaveLength(12);
    expect(parts.sealed).toHaveLength(3 + 16);
    expect(keyIdOf(value)).toBe("k1");
  });

  it("gives a different IV and ciphertext every time", () => {
    const values = Array.from({ length: 50 }, () => encryptField(keyring, SECRET, ctx));
    expect(new Set(values).size).toBe(50);
    expect(new Set(values.map((v) => split(v).iv.toString("hex"))).size).toBe(50);
  });

  it.each([
    ["another row", { ...ctx, rowId: "6f1c1d2e-6a53-4b8e-9a57-1d3f0c9b2a11" }],
    ["another column", { ...ctx, column: "access_token" }],
    ["another table", { ...ctx, table: "oauth_transactions" }],
  ])("fails when the value is moved to %s", (_, elsewhere) => {
    const value = encryptField(keyring, SECRET, ctx);
    expectFailure(() => decryptField(keyring, value, elsewhere), "authentication_failed");
  });

  it("encodes the context unambiguously (no shifting characters between fields)", () => {
    const value = encryptField(keyring, SECRET, { table: "ab", column: "c", rowId: "1" });
    expectFailure(
      () => decryptField(keyring, value, { table: "a", column: "bc", rowId: "1" }),
      "authentication_failed",
    );
  });

  it("fails on any single flipped byte in the iv, ciphertext or tag", () => {
    const value = encryptField(keyring, "ya29.short", ctx);
    const original = split(value);
    for (const part of ["iv", "sealed"] as const) {
      for (let i = 0; i < original[part].length; i++) {
        const parts = split(value);
        parts[part][i] = (parts[part][i] ?? 0) ^ 0x01;
        expectFailure(() => decryptField(keyring, join(parts), ctx), "authentication_failed");
      }
    }
  });

  it("fails on any single changed character of the stored text", () => {
    const value = encryptField(keyring, SECRET, ctx);
    for (let i = 0; i < value.length; i++) {
      const replacement = value[i] === "A" ? "B" : "A";
      const changed = value.slice(0, i) + replacement + value.slice(i + 1);
      expect(() => decryptField(keyring, changed, ctx)).toThrow(DecryptionError);
    }
  });

  it("fails when the key id in the text is swapped, even if both ids hold the same key", () => {
    // Built by hand: parseKeyring refuses one key under two ids, so only the AAD can catch this.
    const key = parseKeyring(generateKeySpec("a")).current.key;
    const twin: Keyring = {
      current: { id: "a", key },
      byId: new Map([
        ["a", key],
        ["b", key],
      ]),
    };
    const value = encryptField(twin, SECRET, ctx);
    expect(decryptField(twin, value, ctx)).toBe(SECRET);
    const swapped = value.replace(/^v1\.a\./, "v1.b.");
    expect(swapped).not.toBe(value);
    expectFailure(() => decryptField(twin, swapped, ctx), "authentication_failed");
  });

  it("fails when the key id is swapped to another real key", () => {
    const ring = parseKeyring(`${generateKeySpec("k2")},${generateKeySpec("k1")}`);
    const value = encryptField(ring, SECRET, ctx);
    expectFailure(
      () => decryptField(ring, value.replace(/^v1\.k2\./, "v1.k1."), ctx),
      "authentication_failed",
    );
  });

  it("rejects other format versions", () => {
    const value = encryptField(keyring, SECRET, ctx);
    const error = expectFailure(
      () => decryptField(keyring, value.replace(/^v1\./, "v2."), ctx),
      "malformed",
    );
    expect(error.message).toBe("unsupported encrypted field version v2");
  });

  it("names an unknown key id clearly", () => {
    const old = parseKeyring(generateKeySpec("old"));
    const value = encryptField(old, SECRET, ctx);
    const error = expectFailure(
      () => decryptField(parseKeyring(generateKeySpec("new")), value, ctx),
      "unknown_key",
    );
    expect(error.message).toBe("key old is not in the keyring");
  });

  it.each([
    ["empty", ""],
    ["a plaintext token", SECRET],
    ["a JWT", "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJTRUNSRVQifQ.c2lnbmF0dXJl"],
    ["too few parts", "v1.k1.AAAAAAAAAAAAAAAA"],
    ["too many parts", `v1.k1.AAAAAAAAAAAAAAAA.${"A".repeat(22)}.x`],
    ["a bad key id", `v1.k+1.AAAAAAAAAAAAAAAA.${"A".repeat(22)}`],
    ["a short iv", `v1.k1.AAAAAAAAAAAA.${"A".repeat(22)}`],
    ["a non-canonical ciphertext", `v1.k1.AAAAAAAAAAAAAAAA.${"A".repeat(21)}B`],
    ["padding", `v1.k1.AAAAAAAAAAAAAAAA.${"A".repeat(22)}==`],
    ["a missing tag", "v1.k1.AAAAAAAAAAAAAAAA.AAAA"],
  ])("rejects a malformed value (%s) without quoting it", (_, value) => {
    const error = expectFailure(() => decryptField(keyring, value, ctx), "malformed");
    if (value.length > 4) expect(error.message).not.toContain(value);
  });

  it("never puts the plaintext or key into an error", () => {
    const value = encryptField(keyring, SECRET, ctx);
    const error = failure(() => decryptField(keyring, value, { ...ctx, rowId: "other" }));
    const keyB64 = keyring.current.key.toString("base64");
    const keyHex = keyring.current.key.toString("hex");
    for (const shown of [error.message, String(error), JSON.stringify(error)]) {
      expect(shown).not.toContain(SECRET);
      expect(shown).not.toContain(keyB64);
      expect(shown).not.toContain(keyHex);
    }
  });

  it("refuses an empty or missing context part", () => {
    const value = encryptField(keyring, SECRET, ctx);
    for (const bad of [
      { ...ctx, rowId: "" },
      { ...ctx, column: "" },
      { ...ctx, table: "" },
    ]) {
      expect(() => encryptField(keyring, SECRET, bad)).toThrow(TypeError);
      expect(() => decryptField(keyring, value, bad)).toThrow(TypeError);
    }
  });

  it("refuses a plaintext that cannot round-trip through UTF-8", () => {
    expect(() => encryptField(keyring, "lone \ud800 surrogate", ctx)).toThrow(TypeError);
  });
});

describe("isEncryptedValue / keyIdOf", () => {
  it("tells encrypted values from plaintext", () => {
    expect(isEncryptedValue(encryptField(keyring, "", ctx))).toBe(true);
    expect(isEncryptedValue(encryptField(keyring, SECRET, ctx))).toBe(true);
    for (const plain of [
      "",
      SECRET,
      "ya29.a0AfH6SMB",
      "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJTRUNSRVQifQ.c2lnbmF0dXJl",
      "v1.k1.short.short",
    ]) {
      expect(isEncryptedValue(plain)).toBe(false);
    }
  });

  it("keyIdOf throws DecryptionError on malformed values", () => {
    expect(() => keyIdOf(SECRET)).toThrow(DecryptionError);
  });
});

describe("rotation", () => {
  const oldSpec = generateKeySpec("old");
  const newSpec = generateKeySpec("new");
  const before = parseKeyring(oldSpec);
  const during = parseKeyring(`${newSpec},${oldSpec}`);

  it("reads old values, writes with the new key, and flags what must be re-encrypted", () => {
    const oldValue = encryptField(before, SECRET, ctx);
    expect(needsReencryption(before, oldValue)).toBe(false);

    expect(decryptField(during, oldValue, ctx)).toBe(SECRET);
    expect(needsReencryption(during, oldValue)).toBe(true);

    const newValue = encryptField(during, SECRET, ctx);
    expect(keyIdOf(newValue)).toBe("new");
    expect(needsReencryption(during, newValue)).toBe(false);
    expect(decryptField(during, newValue, ctx)).toBe(SECRET);

    // Once the old key is dropped, only rewritten values stay readable.
    const after = parseKeyring(newSpec);
    expect(decryptField(after, newValue, ctx)).toBe(SECRET);
    expect(() => decryptField(after, oldValue, ctx)).toThrow("key old is not in the keyring");
  });

  it("reencryptField moves a value to the current key and leaves current ones alone", () => {
    const oldValue = encryptField(before, SECRET, ctx);
    const moved = reencryptField(during, oldValue, ctx);
    expect(keyIdOf(moved)).toBe("new");
    expect(decryptField(parseKeyring(newSpec), moved, ctx)).toBe(SECRET);
    expect(reencryptField(during, moved, ctx)).toBe(moved);
    expect(() => reencryptField(during, oldValue, { ...ctx, rowId: "x" })).toThrow(DecryptionError);
  });

  it("rotateCell names a cell no key opens, or one that is no sealed value, and goes on", () => {
    const unreadable: string[] = [];
    const stranger = encryptField(parseKeyring(generateKeySpec("gone")), SECRET, ctx);
    expect(rotateCell(during, { ...ctx, value: stranger }, unreadable)).toBe(stranger);
    expect(rotateCell(during, { ...ctx, value: "v1.not-sealed" }, unreadable)).toBe(
      "v1.not-sealed",
    );
    expect(unreadable).toHaveLength(2);
    const moved = rotateCell(
      during,
      { ...ctx, value: encryptField(before, SECRET, ctx) },
      unreadable,
    );
    expect(keyIdOf(moved ?? "")).toBe("new");
  });
});
