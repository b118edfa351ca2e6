// `npm run audit:verify [-- --chain <organisation id>]`: re-verifies every audit chain from
// genesis (or from a retention purge's anchor) under AUDIT_CHAIN_KEY, with progress on stderr.
// Exits 1 and names the first bad event of each broken chain; 0 when every chain is intact.
// Against the embedded database it fails with a clear message while the app holds the folder
// (PGlite allows one process).
// Each chain's head (seq and hash) is printed: note it outside the database, and a later run
// whose head is older or differs at that seq shows a head put back (replay).
// `npm run audit:verify -- --file export.jsonl` checks a downloaded export offline instead (it
// needs the same AUDIT_CHAIN_KEY, no database).
// `npm run audit:verify -- --start-chain <organisation id | ''> --reason "<why>"` starts a chain
// from genesis that the sealer refuses to start on its own (its pending events or organisation
// are over a minute old: lib/audit/seal.ts), audited as audit.chain_started with the reason.
// Only when you know why it has no head: it also seals whatever someone may have edited.
// `npm run audit:verify -- --start-refused-chains --reason "<why>"` does the same for every chain
// the sealer refuses to start on its own (after an upgrade or a restore that hands many back),
// prints each one, then verifies every chain.
import { openDatabase } from "@/db";
import { auditChainKey } from "@/lib/audit/key";
import { startAuditChain, startRefusedAuditChains } from "@/lib/audit/start-chain";
import { verifyAllAuditChains } from "@/lib/audit/verify-all";
import { verifyExportFile } from "@/lib/audit/verify-file";
import { EnvError, env } from "@/lib/env";

function argument(argv: string[], name: string, needs: string): string | undefined {
  const index = argv.indexOf(name);
  if (index === -1) return undefined;
  const value = argv[index + 1];
  // `--reason --chain x` is a missing reason, not the reason "--chain".
  if (value === undefined || value.startsWith("--")) throw new Error(`${name} needs ${needs}`);
  return value;
}

function chainName(chain: string): string {
  return chain === "" ? "(global)" : chain;
}

async function main() {
  const argv = process.argv.slice(2);
  const startRefused = argv.includes("--start-refused-chains");
  const file = argument(argv, "--file", "the path of a .jsonl export");
  // It starts every refused chain, so it verifies every chain: no --chain, no --file beside it.
  if (startRefused && (file !== undefined || argv.includes("--chain"))) {
    throw new Error(
      "--start-refused-chains verifies every chain: give it without --file or --chain",
    );
  }
  if (file !== undefined) {
    process.exitCode = await verifyExportFile({ file, key: auditChainKey(), out: process.stdout });
    return;
  }
  const chain = argument(argv, "--chain", "an organisation id ('' for global)");
  const start = argument(argv, "--start-chain", "an organisation id ('' for global)");
  const reason = argument(argv, "--reason", "why the chain is started again");
  if (start !== undefined && startRefused) {
    throw new Error("give --start-chain or --start-refused-chains, not both");
  }
  if ((start !== undefined || startRefused) && !reason?.trim()) {
    throw new Error(`${startRefused ? "--start-refused-chains" : "--start-chain"} needs --reason`);
  }
  const e = env();
  const handle = await openDatabase({ databaseUrl: e.DATABASE_URL, dataDir: e.dataDir });
  try {
    if (start !== undefined) {
      const started = await startAuditChain({ db: handle.db, chain: start, reason: reason ?? "" });
      console.log(
        `started chain ${chainName(start)} from genesis: ${started?.sealed} events sealed`,
      );
    }
    if (startRefused) {
      // Each as it happens: a run that stops midway has said which chains it started.
      const started = await startRefusedAuditChains({
        db: handle.db,
        reason: reason ?? "",
        onResult: (result) =>
          console.log(
            "error" in result
              ? `NOT started chain ${chainName(result.chain)}: ${result.error}`
              : `started chain ${chainName(result.chain)} from genesis: ${result.sealed} events sealed`,
          ),
      });
      if (started.length === 0) console.log("no chain is refused at genesis: nothing to start");
    }
    process.exitCode = await verifyAllAuditChains({
      db: handle.db,
      chain: chain ?? start,
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
