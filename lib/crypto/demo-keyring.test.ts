import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { loadOrCreateDemoKeyring } from "./demo-keyring";
import { generateKeySpec, KeyringError, parseKeyring } from "./keyring";

let root: string;

beforeEach(() => {
  root = mkdtempSync(path.join(tmpdir(), "mailwarden-crypto-"));
});

afterEach(() => {
  rmSync(root, { recursive: true, force: true });
});

describe("loadOrCreateDemoKeyring", () => {
  it("creates a 0600 key file once, in a directory it creates, then returns the same spec", () => {
    const dataDir = path.join(root, "nested", ".data");
    const first = loadOrCreateDemoKeyring(dataDir);
    expect(first.created).toBe(true);
    expect(first.path).toBe(path.join(dataDir, "token-keys"));
    expect(parseKeyring(first.spec).current.key).toHaveLength(32);
    expect(readFileSync(first.path, "utf8").trim()).toBe(first.spec);
    if (process.platform !== "win32") {
      expect(statSync(first.path).mode & 0o777).toBe(0o600);
    }

    const second = loadOrCreateDemoKeyring(dataDir);
    expect(second).toEqual({ spec: first.spec, created: false, path: first.path });
    // No temporary files left behind.
    expect(readdirSync(dataDir)).toEqual(["token-keys"]);
  });

  it("keeps an existing spec (e.g. written by hand with a trailing newline)", () => {
    const spec = `${generateKeySpec("mine")},${generateKeySpec("older")}`;
    writeFileSync(path.join(root, "token-keys"), `${spec}\n`, { mode: 0o600 });
    expect(loadOrCreateDemoKeyring(root)).toEqual({
      spec,
      created: false,
      path: path.join(root, "token-keys"),
    });
  });

  it("fails closed on a corrupt file instead of replacing it, without quoting it", () => {
    const short = Buffer.alloc(16, 7).toString("base64");
    const file = path.join(root, "token-keys");
    writeFileSync(file, `k1:${short}\n`, { mode: 0o600 });
    expect(() => loadOrCreateDemoKeyring(root)).toThrow(KeyringError);
    try {
      loadOrCreateDemoKeyring(root);
    } catch (error) {
      expect((error as Error).message).toContain(file);
      expect((error as Error).message).toMatch(/16 bytes/);
      expect((error as Error).message).not.toContain(short);
    }
    expect(readFileSync(file, "utf8")).toBe(`k1:${short}\n`);
  });
});
