import "server-only";
import { performance } from "node:perf_hooks";
import type { DbOrTx } from "@/db";
import { countSealedAuditEvents, listAuditChains } from "@/db/queries/audit";
import type { ChainProblem } from "./chain";
import { verifyAuditChain } from "./verify";

type Output = { write: (text: string) => void };

const PROGRESS_EVERY_MS = 1000;

export function describeProblem(problem: ChainProblem): string {
  const chain = problem.chain === "" ? "(global)" : problem.chain;
  const event = problem.id === null ? "" : ` (event id ${problem.id})`;
  return `chain ${chain} seq ${problem.seq}${event}: ${problem.reason}`;
}

/**
 * Verifies every chain (or one) from genesis: progress on `err`, each chain's head (seq and
 * hash, to be recorded outside the database), first bad event and a summary on `out`. Returns the exit code: 0 intact, 1 when any chain is broken.
 */
export async function verifyAllAuditChains({
  db,
  chain,
  out,
  err,
}: {
  db: DbOrTx;
  chain?: string;
  out: Output;
  err: Output;
}): Promise<number> {
  const chains = chain === undefined ? await listAuditChains({ db }) : [chain];
  const total = await countSealedAuditEvents({ db, chain });
  const started = performance.now();
  let done = 0;
  let lastReport = started;
  let lastChecked = -1;
  const progress = (checked: number, isFinal = false) => {
    const now = performance.now();
    if (isFinal ? checked === lastChecked : now - lastReport < PROGRESS_EVERY_MS) return;
    lastReport = now;
    lastChecked = checked;
    const rate = Math.round(checked / Math.max((now - started) / 1000, 0.001));
    const percent = total === 0 ? 100 : Math.min(100, Math.floor((checked / total) * 100));
    err.write(`verified ${checked}/${total} events (${percent}%), ${rate} events/s\n`);
  };
  let broken = 0;
  for (const name of chains) {
    const report = await verifyAuditChain({
      db,
      chain: name,
      mode: "full",
      onProgress: (checked) => progress(done + checked),
    });
    done += report.checked;
    // Noted outside the database, a head shows later whether an older one was put back.
    out.write(
      `head: chain ${name === "" ? "(global)" : name} ${report.head ? `seq ${report.head.seq} hash ${report.head.hash}` : "none"}\n`,
    );
    if (report.problem) {
      broken++;
      out.write(`BROKEN ${describeProblem(report.problem)}\n`);
    }
    const oldest = report.unsealed.oldest;
    if (oldest && Date.now() - oldest.getTime() > 60_000) {
      out.write(
        `warning: chain ${name === "" ? "(global)" : name} has ${report.unsealed.count} events unsealed since ${oldest.toISOString()}\n`,
      );
    }
  }
  progress(done, true);
  out.write(
    broken === 0
      ? `intact: ${chains.length} chains, ${done} events\n`
      : `${broken} of ${chains.length} chains broken\n`,
  );
  return broken === 0 ? 0 : 1;
}
