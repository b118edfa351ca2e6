import "server-only";
import type { DbOrTx } from "@/db";
import {
  getAuditChainHead,
  getUnsealedAuditSummary,
  listHeadlessPendingChains,
} from "@/db/queries/audit";
import { oldGenesisProblem } from "./seal";
import { writeAuditEvent } from "./write";

/**
 * The operator's deliberate start of a chain from genesis (`npm run audit:verify --
 * --start-chain`), for a chain the sealer refuses to start on its own because its pending
 * events or its organisation are older than a minute (lib/audit/seal.ts): after an upgrade that
 * hands every chain back to the sealer, or a chain whose first events waited out a crash. It
 * writes `audit.chain_started` with the reason and seals it, after every pending event, from
 * seq 1, in one transaction. A chain that already has a head is left alone.
 */
export async function startAuditChain({
  db,
  chain,
  reason,
}: {
  db: DbOrTx;
  chain: string;
  reason: string;
}): Promise<{ sealed: number }> {
  if ((await getAuditChainHead({ db, chain })) !== undefined) {
    throw new Error(
      `chain ${chain === "" ? "(global)" : chain} already has a head: nothing to start`,
    );
  }
  const pending = await getUnsealedAuditSummary({ db, chain });
  await writeAuditEvent(
    db,
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
}

/**
 * `--start-refused-chains`: the same deliberate start for every chain the sealer refuses to start
 * on its own (oldGenesisProblem), with one reason, for an upgrade or a restore that hands many
 * chains back at once. A chain the sealer would start itself (new) is left to it; a chain that
 * fails to start (sealed events without a head) is reported, and the others still start.
 */
export async function startRefusedAuditChains({
  db,
  reason,
}: {
  db: DbOrTx;
  reason: string;
}): Promise<Array<{ chain: string; sealed: number } | { chain: string; error: string }>> {
  const results: Array<{ chain: string; sealed: number } | { chain: string; error: string }> = [];
  for (const chain of await listHeadlessPendingChains({ db })) {
    if ((await oldGenesisProblem(db, chain)) === null) continue;
    try {
      results.push({ chain, ...(await startAuditChain({ db, chain, reason })) });
    } catch (error) {
      results.push({ chain, error: (error as Error).message });
    }
  }
  return results;
}
