import "server-only";
import { type DbOrTx, inTransaction } from "@/db";
import {
  getAuditChainAges,
  getAuditChainHead,
  hasSealedAuditEvents,
  insertAuditCheckpoints,
  listChainsWithUnsealedEvents,
  listUnsealedAuditEvents,
  lockAuditChain,
  saveAuditChainHead,
  sealAuditEvents,
} from "@/db/queries/audit";
import {
  CHECKPOINT_EVERY,
  GENESIS_HASH,
  hashEvent,
  isoMicros,
  macCheckpoint,
  macHead,
  macPersonal,
} from "./chain";
import { auditChainKey } from "./key";

export const SEAL_BATCH = 500;

export class AuditChainError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "AuditChainError";
  }
}

/**
 * How old a chain's evidence may be for the sealer to start it from genesis on its own: a new
 * chain's first events are sealed within seconds (an organisation's first, org.created, inline
 * in the transaction that creates it), and an event left unsealed longer raises the alarm.
 */
export const NEW_CHAIN_MS = 60_000;

export type SealOptions = {
  /** Start a chain from genesis whatever its age: only `npm run audit:verify -- --start-chain`. */
  allowGenesis?: boolean;
};

// No head and no sealed events: a new chain, or one whose seals, head, checkpoints and anchor
// were all removed so that an edited history would be sealed afresh. Events older than a
// minute, or an organisation older than a minute, mean the chain existed before. The sealer
// refuses such a chain and verify reports it, both by this one rule (the database's clock).
export async function oldGenesisProblem(db: DbOrTx, chain: string): Promise<string | null> {
  const ages = await getAuditChainAges({ db, chain });
  if (ages.pendingMs === null) return null; // nothing to seal
  const name = chain === "" ? "(global)" : chain;
  const how = `if it must start again, run: npm run audit:verify -- --start-chain ${chain === "" ? "''" : chain} --reason "<why>"`;
  if (ages.pendingMs > NEW_CHAIN_MS) {
    return `audit chain "${name}": no head record, yet its oldest unsealed event is ${Math.round(ages.pendingMs / 1000)} s old; a new chain's first events are seconds old, so its history may have been unsealed and rewritten. Not started from genesis (${how})`;
  }
  if ((ages.organizationMs ?? 0) > NEW_CHAIN_MS) {
    return `audit chain "${name}": no head record, yet its organisation was created ${Math.round((ages.organizationMs ?? 0) / 1000)} s ago and sealed its first event then; its history may have been unsealed and rewritten. Not started from genesis (${how})`;
  }
  return null;
}

async function refuseOldGenesis(tx: DbOrTx, chain: string) {
  const problem = await oldGenesisProblem(tx, chain);
  if (problem) throw new AuditChainError(problem);
}

async function startingPoint(tx: DbOrTx, chain: string, key: Buffer, options: SealOptions) {
  const head = await getAuditChainHead({ db: tx, chain });
  if (head) {
    // Extending a forged head would launder it: refuse, and let the unsealed alarm show it.
    if (macHead(key, { chain, seq: head.seq, hash: head.hash }) !== head.mac) {
      throw new AuditChainError(`audit chain "${chain}": its head record fails its MAC`);
    }
    return { seq: head.seq, hash: head.hash };
  }
  // Sealed events without a head means the head was deleted: starting again from genesis
  // would re-seal whatever someone edited.
  if (await hasSealedAuditEvents({ db: tx, chain })) {
    throw new AuditChainError(`audit chain "${chain}": sealed events but no head record`);
  }
  if (!options.allowGenesis) await refuseOldGenesis(tx, chain);
  return { seq: 0, hash: GENESIS_HASH };
}

/**
 * Seals up to `limit` of the chain's unsealed events that `tx` can see, in id order, under the
 * chain's advisory lock. An event whose transaction commits late (a smaller id than events
 * already sealed) simply gets the next seq: the chain's order is seal order. Returns how many
 * it sealed.
 */
export async function sealChainInTransaction(
  tx: DbOrTx,
  chain: string,
  limit = SEAL_BATCH,
  options: SealOptions = {},
): Promise<number> {
  const key = auditChainKey();
  await lockAuditChain({ db: tx, chain });
  let cursor = await startingPoint(tx, chain, key, options);
  const events = await listUnsealedAuditEvents({ db: tx, chain, limit });
  if (events.length === 0) return 0;
  const now = new Date();
  const seals: {
    id: number;
    seq: number;
    prevHash: string;
    hash: string;
    personalMac: string;
  }[] = [];
  const checkpoints: { chain: string; seq: number; hash: string; createdAt: Date; mac: string }[] =
    [];
  for (const event of events) {
    const seq = cursor.seq + 1;
    // The personal fields are committed to as a keyed hash, so erasure can replace them later.
    const personalMac = macPersonal(key, event);
    const hash = hashEvent(key, { ...event, personalMac, seq, prevHash: cursor.hash });
    seals.push({ id: event.id, seq, prevHash: cursor.hash, hash, personalMac });
    if (seq % CHECKPOINT_EVERY === 0) {
      const mac = macCheckpoint(key, { chain, seq, hash, createdAt: isoMicros(now) });
      checkpoints.push({ chain, seq, hash, createdAt: now, mac });
    }
    cursor = { seq, hash };
  }
  const sealed = await sealAuditEvents({ db: tx, seals });
  if (sealed !== seals.length) {
    throw new AuditChainError(`audit chain "${chain}": events changed while being sealed`);
  }
  await insertAuditCheckpoints({ db: tx, checkpoints });
  await saveAuditChainHead({
    db: tx,
    head: { chain, ...cursor, updatedAt: now, mac: macHead(key, { chain, ...cursor }) },
  });
  return sealed;
}

/**
 * How long a process's sealer leaves alone a chain that refused to be sealed (a forged or
 * missing head, a changed key) before trying it again: it stays refused until someone repairs
 * it, and trying it at every write would cost statements for nothing. The unsealed alarm on
 * the activity and security pages shows it meanwhile.
 */
export const FAILED_CHAIN_REST_MS = 60_000;

/**
 * Seals every pending event of one chain, or of every chain with pending events, one batch per
 * transaction. Safe to run in any number of processes at once. A chain that cannot be sealed
 * does not hold up the others; its error is thrown once all were tried. With `resting` (the
 * caller's memory, kept between calls) a chain that failed is skipped for FAILED_CHAIN_REST_MS
 * and listed in `skipped`.
 */
export async function sealPending({
  db,
  chain,
  batchSize = SEAL_BATCH,
  resting,
}: {
  db: DbOrTx;
  chain?: string;
  batchSize?: number;
  resting?: Map<string, number>;
}): Promise<{ sealed: number; skipped: string[] }> {
  const chains = chain === undefined ? await listChainsWithUnsealedEvents({ db }) : [chain];
  let total = 0;
  const failures: string[] = [];
  const skipped: string[] = [];
  for (const name of chains) {
    if ((resting?.get(name) ?? 0) > Date.now()) {
      skipped.push(name);
      continue;
    }
    try {
      for (;;) {
        const sealed = await inTransaction(db, (tx) => sealChainInTransaction(tx, name, batchSize));
        total += sealed;
        if (sealed < batchSize) break;
      }
      resting?.delete(name);
    } catch (error) {
      if (!(error instanceof AuditChainError)) throw error;
      failures.push(error.message);
      resting?.set(name, Date.now() + FAILED_CHAIN_REST_MS);
    }
  }
  if (failures.length > 0) throw new AuditChainError(failures.join("; "));
  return { sealed: total, skipped };
}
