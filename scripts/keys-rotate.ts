// `npm run keys:rotate`: re-encrypts every token column under the first key of
// TOKEN_ENCRYPTION_KEYS. Safe to run again after an interruption: it picks up where it stopped.
import { openDatabase } from "@/db";
import { keyring } from "@/lib/crypto/runtime";
import { EnvError, env } from "@/lib/env";
import { describeRotation, RotationFailedError, reencryptTokens } from "@/lib/jobs/reencrypt";

async function main() {
  const e = env();
  const handle = await openDatabase({ databaseUrl: e.DATABASE_URL, dataDir: e.dataDir });
  try {
    const ring = keyring();
    console.info(`re-encrypting token columns under key ${ring.current.id} …`);
    const result = await reencryptTokens(handle.db, ring, {
      actor: { type: "system", label: "npm run keys:rotate" },
    });
    console.info(`done: ${describeRotation(result)} re-encrypted`);
    if (result.unreadable.length > 0) {
      console.error(`cells no key can open, left as they are: ${result.unreadable.join(", ")}`);
      process.exitCode = 1;
    }
  } finally {
    await handle.close();
  }
}

main().catch((error) => {
  if (error instanceof RotationFailedError) {
    // Audited as keys.rotated with outcome failure; running it again finishes the rest.
    console.error(
      `key rotation stopped: ${error.message}\nre-encrypted before it stopped: ${describeRotation(error.result)}; run it again to finish`,
    );
    process.exit(1);
  }
  console.error(
    error instanceof EnvError ? error.message : `key rotation failed: ${(error as Error).message}`,
  );
  process.exit(1);
});
