import "server-only";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { env } from "@/lib/env";

const holder = globalThis as typeof globalThis & { __mailwardenAuditKey?: Buffer };

/**
 * The key every audit hash, checkpoint and chain head is MAC'd with: AUDIT_CHAIN_KEY, or in demo
 * mode one generated once into the data folder (mode 0600). Without it nothing can be sealed or
 * verified, so outside demo mode there is no fallback.
 */
export function auditChainKey(): Buffer {
  if (holder.__mailwardenAuditKey) return holder.__mailwardenAuditKey;
  const e = env();
  let secret = e.AUDIT_CHAIN_KEY;
  if (!secret) {
    if (!e.isDemo) throw new Error("AUDIT_CHAIN_KEY is required outside demo mode");
    secret = demoKey(path.join(e.dataDir, "audit-chain-key"));
  }
  holder.__mailwardenAuditKey = Buffer.from(secret, "utf8");
  return holder.__mailwardenAuditKey;
}

function demoKey(file: string): string {
  try {
    return fs.readFileSync(file, "utf8").trim();
  } catch {
    fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    const secret = randomBytes(32).toString("base64url");
    try {
      fs.writeFileSync(file, secret, { mode: 0o600, flag: "wx" });
      return secret;
    } catch {
      // Another process created it first: theirs is the key.
      return fs.readFileSync(file, "utf8").trim();
    }
  }
}
