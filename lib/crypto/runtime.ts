import "server-only";
import { env } from "@/lib/env";
import { loadOrCreateDemoKeyring } from "./demo-keyring";
import { type Keyring, parseKeyring } from "./keyring";

const holder = globalThis as typeof globalThis & { __mailwardenKeyring?: Keyring };

/**
 * The process's keyring: TOKEN_ENCRYPTION_KEYS (or its _FILE), or in demo mode a key generated
 * once into the data folder. Outside demo mode there is no fallback: encryption fails closed.
 */
export function keyring(): Keyring {
  if (holder.__mailwardenKeyring) return holder.__mailwardenKeyring;
  const e = env();
  let spec = e.TOKEN_ENCRYPTION_KEYS;
  if (!spec) {
    if (!e.isDemo) throw new Error("TOKEN_ENCRYPTION_KEYS is not set: tokens cannot be encrypted.");
    const demo = loadOrCreateDemoKeyring(e.dataDir);
    if (demo.created)
      console.info(`[mailwarden] demo mode: generated a token encryption key in ${demo.path}`);
    spec = demo.spec;
  }
  holder.__mailwardenKeyring = parseKeyring(spec);
  return holder.__mailwardenKeyring;
}
