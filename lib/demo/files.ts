import { randomBytes } from "node:crypto";
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { isIP } from "node:net";
import path from "node:path";

/** The demo mailbox's mail scope: what Gmail's https://mail.google.com/ is to Gmail. */
export const DEMO_MAIL_SCOPE = "mail.send";

/** Root of everything the demo services keep on disk. */
export function demoDir(dataDir: string): string {
  return path.join(dataDir, "demo");
}

export async function ensurePrivateDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
}

/**
 * Writes through a temporary file and a rename so a crash never leaves half a key behind,
 * and so the 0600 mode is in place before any byte of the secret lands on disk.
 */
export async function writePrivateFile(file: string, data: string): Promise<void> {
  const tmp = `${file}.${randomBytes(6).toString("hex")}.tmp`;
  const write = () => writeFile(tmp, data, { mode: 0o600, flag: "wx" });
  // The folder is made (0700) only when missing: the demo SMTP server writes a file per message.
  await write().catch(async (error: NodeJS.ErrnoException) => {
    if (error.code !== "ENOENT") throw error;
    await ensurePrivateDir(path.dirname(file));
    await write();
  });
  await rename(tmp, file);
}

export async function readIfExists(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
}

/** Demo services hand out tokens to anyone who types an email address: never in production. */
export function assertDemoAllowed(allowInProduction: boolean | undefined): void {
  if (process.env.NODE_ENV === "production" && allowInProduction !== true) {
    throw new Error(
      "Refusing to start the demo OAuth provider/SMTP server with NODE_ENV=production: " +
        "anyone can sign in without a password. Configure real providers, or pass " +
        "allowInProduction: true if you really mean to run the demo.",
    );
  }
}

/** Demo services listen on loopback only, so nothing outside this machine can reach them. */
export function assertLoopback(host: string): void {
  const loopback =
    host === "localhost" || host === "::1" || (isIP(host) === 4 && host.startsWith("127."));
  if (!loopback) {
    throw new Error(`Demo services listen on loopback only; got host "${host}"`);
  }
}

export function escapeHtml(value: unknown): string {
  return String(value)
    .replaceAll("&", "&amp;")
    .replaceAll("<", "&lt;")
    .replaceAll(">", "&gt;")
    .replaceAll('"', "&quot;")
    .replaceAll("'", "&#39;");
}
