import "server-only";
import { randomBytes } from "node:crypto";
import {
  closeSync,
  fsyncSync,
  linkSync,
  mkdirSync,
  openSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import path from "node:path";
import { generateKeySpec, KeyringError, parseKeyring } from "./keyring";

export const DEMO_KEY_FILE = "token-keys";

export type DemoKeyring = { spec: string; created: boolean; path: string };

/**
 * Demo mode only: the token key spec kept in `${dataDir}/token-keys`, created (mode 0600) on
 * first use so a fresh clone needs no configuration. Safe against several processes starting
 * at once: exactly one file is ever published and every caller returns its contents.
 */
export function loadOrCreateDemoKeyring(dataDir: string): DemoKeyring {
  const file = path.join(dataDir, DEMO_KEY_FILE);
  const existing = readSpec(file);
  if (existing !== undefined) return { spec: existing, created: false, path: file };

  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const spec = generateKeySpec();
  if (publishOnce(file, `${spec}\n`)) return { spec, created: true, path: file };

  const winner = readSpec(file);
  if (winner === undefined) {
    throw new Error(`${file} vanished while it was being created`);
  }
  return { spec: winner, created: false, path: file };
}

function readSpec(file: string): string | undefined {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    if (isErrno(error, "ENOENT")) return undefined;
    throw error;
  }
  const spec = text.trim();
  try {
    parseKeyring(spec);
  } catch (error) {
    // Fail closed: replacing a bad file would orphan every token encrypted under it.
    if (error instanceof KeyringError) {
      throw new KeyringError(`${file}: ${error.message}`, error.entry);
    }
    throw error;
  }
  return spec;
}

// Written in full to a private temporary file, then hard-linked into place: link() never
// overwrites, so a concurrent starter can neither clobber the key nor read a half-written file.
function publishOnce(file: string, content: string): boolean {
  const temporary = `${file}.${randomBytes(6).toString("hex")}.tmp`;
  try {
    const fd = openSync(temporary, "wx", 0o600);
    try {
      writeFileSync(fd, content);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    try {
      linkSync(temporary, file);
      return true;
    } catch (error) {
      if (isErrno(error, "EEXIST")) return false;
      throw error;
    }
  } finally {
    rmSync(temporary, { force: true });
  }
}

function isErrno(error: unknown, code: string): boolean {
  return error instanceof Error && (error as NodeJS.ErrnoException).code === code;
}
