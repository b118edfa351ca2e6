import "server-only";
import { type DbOrTx, inTransaction } from "@/db";
import {
  getAuditChainHead,
  getUnsealedAuditSummary,
  listHeadlessPendingChains,
  lockAuditChain,
} from "@/db/queries/audit";
import { oldGenesisProblem } from "./seal";
import { writeAuditEvent } from "./write";

/**
 * The operator's deliberate start of a chain from genesis (`npm run audit:verify --
 * --start-chain`), for a chain the sealer refuses to start on its own because its pending
 * events or its organisation are older than a minute (lib/audit/seal.ts): after an upgrade that
 * hands every chain back to the sealer, or a chain whose first events waited out a crash. It
 * writes `audit.chain_started` with the reason and seals it, after every pending event, from
 * seq 1, in one transaction under the chain's lock, so a head another process wrote meanwhile is
 * seen. A chain that already has a head is left alone; with `onlyIfRefused`, so is one the
 * sealer would start itself (null).
 */
export async function startAuditChain({
  db,
  chain,
  reason,
  onlyIfRefused = false,
}: {
  db: DbOrTx;
  chain: string;
  reason: string;
  onlyIfRefused?: boolean;
}): Promise<{ sealed: number } | null> {
  return inTransaction(db, async (tx) => {
    await lockAuditChain({ db: tx, chain });
    if ((await getAuditChainHead({ db: tx, chain })) !== undefined) {
      throw new Error(
        `chain ${chain === "" ? "(global)" : chain} already has a head: nothing to start`,
      );
    }
    if (onlyIfRefused && (await oldGenesisProblem(tx, chain)) === null) return null;
    const pending = await getUnsealedAuditSummary({ db: tx, chain });
    await writeAuditEvent(
      tx,
      {
        orgId: chain === "" ? null : chain,
        actor: { type: "system", label: "Operator (audit:verify --start-chain)" },
        action: "audit.chain_started",
        outcome: "success",
        metadata: {
          reason: reason.slice(0, 500),
          pending: pending.count,
          oldestPending: pending.oldest?.toISOString() ?? null,
        },
      },
      { allowGenesis: true },
    );
    return { sealed: pending.count + 1 };
  });
}

export type StartResult = { chain: string; sealed: number } | { chain: string; error: string };

/**
 * `--start-refused-chains`: the same deliberate start for every chain the sealer refuses to start
 * on its own (oldGenesisProblem), with one reason, for an upgrade or a restore that hands many
 * chains back at once. A chain the sealer would start itself (new) is left to it; a chain that
 * cannot be started (sealed events without a head, or a head written meanwhile) is reported,
 * and the others still start. Each result is handed to `onResult` as it happens.
 */
export async function startRefusedAuditChains({
  db,
  reason,
  onResult = () => {},
}: {
  db: DbOrTx;
  reason: string;
  onResult?: (result: StartResult) => void;
}): Promise<StartResult[]> {
  const results: StartResult[] = [];
  for (const chain of await listHeadlessPendingChains({ db })) {
    let result: StartResult;
    try {
      const started = await startAuditChain({ db, chain, reason, onlyIfRefused: true });
      if (started === null) continue;
      result = { chain, ...started };
    } catch (error) {
      result = { chain, error: (error as Error).message };
    }
    results.push(result);
    onResult(result);
  }
  return results;
}
