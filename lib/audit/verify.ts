import "server-only";
import type { DbOrTx } from "@/db";
import {
  getAuditChainAnchor,
  getAuditChainHead,
  getLastVerifiedAuditCheckpoint,
  getSealedAuditEventAfter,
  getUnsealedAuditSummary,
  listAuditCheckpoints,
  listSealedAuditEvents,
  markAuditCheckpointVerified,
} from "@/db/queries/audit";
import {
  type ChainProblem,
  checkRun,
  GENESIS_HASH,
  macAnchor,
  macCheckpoint,
  macHead,
} from "./chain";
import { auditChainKey } from "./key";
import { oldGenesisProblem } from "./seal";

const READ_BATCH = 2000;

export type ChainReport = {
  chain: string;
  /** Sealed events according to the chain's head record. */
  length: number;
  /** The head record as read (an operator notes it outside the database against replay). */
  head: { seq: number; hash: string } | null;
  /** Events re-hashed by this verification. */
  checked: number;
  problem: ChainProblem | null;
  unsealed: { count: number; oldest: Date | null };
};

type Cursor = { seq: number; hash: string };
type Checkpoint = Awaited<ReturnType<typeof listAuditCheckpoints>>[number];

function checkpointProblem(key: Buffer, cp: Checkpoint): ChainProblem | null {
  const expected = macCheckpoint(key, cp);
  return expected === cp.mac
    ? null
    : {
        chain: cp.chain,
        seq: cp.seq,
        id: null,
        reason: `checkpoint at seq ${cp.seq} fails its MAC`,
      };
}

/**
 * Verifies a chain's events after `start` up to `endSeq` (the head), and every checkpoint on the
 * way against the event it names. Returns where it got to and the newest checkpoint passed.
 */
async function verifyRun(opts: {
  db: DbOrTx;
  key: Buffer;
  chain: string;
  start: Cursor;
  endSeq: number | undefined;
  onProgress?: (checked: number) => void;
}) {
  const { db, key, chain, endSeq } = opts;
  const checkpoints = (await listAuditCheckpoints({ db, chain, afterSeq: opts.start.seq })).filter(
    (cp) => endSeq === undefined || cp.seq <= endSeq,
  );
  let cursor = opts.start;
  let checked = 0;
  let passed: Checkpoint | undefined;
  let next = 0;
  for (;;) {
    const events = await listSealedAuditEvents({
      db,
      chain,
      afterSeq: cursor.seq,
      upToSeq: endSeq,
      limit: READ_BATCH,
    });
    if (events.length === 0) break;
    const run = checkRun(key, chain, cursor, events);
    checked += events.length;
    const hashes = new Map(events.map((e) => [e.seq, e.hash]));
    for (; next < checkpoints.length; next++) {
      const cp = checkpoints[next];
      if (!cp || cp.seq > run.cursor.seq) break;
      const problem = checkpointProblem(key, cp);
      if (problem) return { cursor, checked, passed, problem };
      if (hashes.get(cp.seq) !== cp.hash) {
        const reason = `checkpoint at seq ${cp.seq} does not match the event there`;
        return { cursor, checked, passed, problem: { chain, seq: cp.seq, id: null, reason } };
      }
      passed = cp;
    }
    if (run.problem) return { cursor, checked, passed, problem: run.problem };
    cursor = run.cursor;
    opts.onProgress?.(checked);
    if (events.length < READ_BATCH) break;
  }
  const orphan = checkpoints[next];
  if (orphan) {
    const reason = `checkpoint at seq ${orphan.seq} has no event (events deleted?)`;
    return { cursor, checked, passed, problem: { chain, seq: orphan.seq, id: null, reason } };
  }
  return { cursor, checked, passed, problem: null };
}

function tailProblem(
  chain: string,
  cursor: Cursor,
  head: { seq: number; hash: string },
): ChainProblem | null {
  if (cursor.seq < head.seq) {
    const reason = `the chain ends at seq ${cursor.seq} but its head record says ${head.seq}: newest events deleted`;
    return { chain, seq: cursor.seq + 1, id: null, reason };
  }
  if (cursor.hash !== head.hash) {
    return {
      chain,
      seq: cursor.seq,
      id: null,
      reason: "the newest event does not match the head record",
    };
  }
  return null;
}

/**
 * Re-hashes a chain from its start (the purge anchor, else genesis) through `endSeq`, every
 * checkpoint on the way included, trusting no earlier verification: what a purge checks before
 * it deletes those events. Returns the first problem, or null.
 */
export async function verifyAuditChainThrough({
  db,
  chain,
  endSeq,
}: {
  db: DbOrTx;
  chain: string;
  endSeq: number;
}): Promise<ChainProblem | null> {
  const key = auditChainKey();
  const begun = await chainStart(db, key, chain);
  if ("problem" in begun) return begun.problem;
  const run = await verifyRun({ db, key, chain, start: begun.start, endSeq });
  if (run.problem) return run.problem;
  if (run.cursor.seq < endSeq) {
    const reason = `the chain ends at seq ${run.cursor.seq} before seq ${endSeq}: events deleted`;
    return { chain, seq: run.cursor.seq + 1, id: null, reason };
  }
  return null;
}

/** Where a chain starts: its purge anchor, checked against its MAC, or genesis. */
async function chainStart(
  db: DbOrTx,
  key: Buffer,
  chain: string,
): Promise<{ start: Cursor } | { problem: ChainProblem }> {
  // A retention purge removed everything up to its anchor: the chain starts there. Without an
  // anchor a chain starts at genesis, so events cut from its start are missing, not purged.
  const anchor = await getAuditChainAnchor({ db, chain });
  if (!anchor) return { start: { seq: 0, hash: GENESIS_HASH } };
  if (macAnchor(key, anchor) !== anchor.mac) {
    const reason = "the purge anchor fails its MAC";
    return { problem: { chain, seq: anchor.seq, id: null, reason } };
  }
  return { start: { seq: anchor.seq, hash: anchor.hash } };
}

/**
 * Verifies one chain. `incremental` (page views) starts at the newest checkpoint an earlier
 * verification reached, so its cost is bounded by the events since; `full` starts at genesis.
 * Both check the tail against the MAC'd head record, and record the newest checkpoint they
 * verified.
 */
export async function verifyAuditChain({
  db,
  chain,
  mode,
  onProgress,
}: {
  db: DbOrTx;
  chain: string;
  mode: "incremental" | "full";
  onProgress?: (checked: number) => void;
}): Promise<ChainReport> {
  const key = auditChainKey();
  // Head first: whatever the sealer commits afterwards lies beyond it and is left for next time.
  const head = await getAuditChainHead({ db, chain });
  const unsealed = await getUnsealedAuditSummary({ db, chain });
  const report = (checked: number, problem: ChainProblem | null): ChainReport => ({
    chain,
    length: head?.seq ?? 0,
    head: head ? { seq: head.seq, hash: head.hash } : null,
    checked,
    problem,
    unsealed,
  });
  if (head && macHead(key, { chain, seq: head.seq, hash: head.hash }) !== head.mac) {
    return report(0, { chain, seq: head.seq, id: null, reason: "the head record fails its MAC" });
  }
  const begun = await chainStart(db, key, chain);
  if ("problem" in begun) return report(0, begun.problem);
  let start = begun.start;
  if (mode === "incremental") {
    const cp = await getLastVerifiedAuditCheckpoint({ db, chain });
    if (cp && cp.seq > start.seq) {
      const problem = checkpointProblem(key, cp);
      if (problem) return report(0, problem);
      start = { seq: cp.seq, hash: cp.hash };
    }
  }
  const run = await verifyRun({ db, key, chain, start, endSeq: head?.seq, onProgress });
  if (run.passed) await markAuditCheckpointVerified({ db, chain, seq: run.passed.seq });
  if (run.problem) return report(run.checked, run.problem);
  if (!head) {
    // Nothing sealed and nothing head: a new chain, unless the sealer refuses to start it from
    // genesis (lib/audit/seal.ts), which verify then reports by the same rule.
    if (run.cursor.seq === 0) {
      const reason = await oldGenesisProblem(db, chain);
      return report(0, reason === null ? null : { chain, seq: 0, id: null, reason });
    }
    const reason = "sealed events but no head record (head deleted)";
    return report(run.checked, { chain, seq: run.cursor.seq, id: null, reason });
  }
  const tail = tailProblem(chain, run.cursor, head);
  if (tail || mode === "incremental") return report(run.checked, tail);
  // An older head put back over a newer one leaves sealed events beyond it.
  const beyond = await getSealedAuditEventAfter({ db, chain, seq: head.seq });
  const latest = await getAuditChainHead({ db, chain });
  if (beyond?.seq && latest && beyond.seq > latest.seq) {
    const reason = `sealed event beyond the head record (seq ${latest.seq}): head rolled back?`;
    return report(run.checked, { chain, seq: beyond.seq, id: beyond.id, reason });
  }
  return report(run.checked, null);
}
