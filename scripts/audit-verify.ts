// `npm run audit:verify [-- --chain <organisation id>]`: re-verifies every audit chain from
// genesis under AUDIT_CHAIN_KEY, with progress on stderr. Exits 1 and names the first bad event
// of each broken chain; 0 when every chain is intact. Against the embedded database it fails
// with a clear message while the app holds the folder (PGlite allows one process).
import { openDatabase } from "@/db";
import { verifyAllAuditChains } from "@/lib/audit/verify-all";
import { EnvError, env } from "@/lib/env";

function chainArgument(argv: string[]): string | undefined {
  const index = argv.indexOf("--chain");
  if (index === -1) return undefined;
  const value = argv[index + 1];
  if (value === undefined) throw new Error("--chain needs an organisation id ('' for global)");
  return value;
}

async function main() {
  const chain = chainArgument(process.argv.slice(2));
  const e = env();
  const handle = await openDatabase({ databaseUrl: e.DATABASE_URL, dataDir: e.dataDir });
  try {
    process.exitCode = await verifyAllAuditChains({
      db: handle.db,
      chain,
      out: process.stdout,
      err: process.stderr,
    });
  } finally {
    await handle.close();
  }
}

main().catch((error) => {
  console.error(
    error instanceof EnvError
      ? error.message
      : `audit verification could not run: ${(error as Error).message}`,
  );
  process.exit(2);
});
