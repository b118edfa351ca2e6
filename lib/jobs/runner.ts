import "server-only";
import { randomUUID } from "node:crypto";
import os from "node:os";
import type { Database, DbOrTx } from "@/db";
import {
  cancelJobRow,
  claimJob,
  endJob,
  finishItem,
  getJob,
  insertJob,
  listResumableJobs,
  listUnfinishedItems,
  markItemsStarted,
  renewLease,
} from "@/db/queries/jobs";
import type { Job } from "@/db/schema";

// The generic runner of long operations. A job and its items live in the database, so any
// process can finish what another started: the running process holds a lease it renews; once
// the lease has expired (that process died), the next process to look takes the job over and
// works through the items not finished yet. An item's result is recorded once, in the handler's
// own transaction where the handler has one, so a finished item is never done again.

export type ItemOutcome = { result: string; detail?: string | null };

export type ItemContext = {
  job: Job;
  /**
   * Records the item's result inside the caller's transaction, so that the result commits
   * together with the change it reports (or not at all).
   */
  finish: (tx: DbOrTx, outcome: ItemOutcome) => Promise<void>;
  /** The item was under way when the previous process died: its work may be half done. */
  wasStarted: boolean;
};

export type JobHandler = {
  kind: string;
  concurrency: number;
  /** Does one item and calls ctx.finish, or returns an outcome for the runner to record. */
  runItem: (
    item: { itemId: string; label: string | null },
    ctx: ItemContext,
  ) => Promise<ItemOutcome | undefined>;
  /** Runs once after the last item, when the job ended as done. */
  onDone?: (job: Job) => Promise<void>;
};

const handlers = new Map<string, JobHandler>();
const running = new Set<string>();

export function registerJobHandler(handler: JobHandler) {
  handlers.set(handler.kind, handler);
}

export const PROCESS_ID = `${os.hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;

export type RunOptions = { leaseMs?: number };

const DEFAULT_LEASE_MS = 10_000;

export async function createJob(input: {
  db: DbOrTx;
  kind: string;
  orgId: string | null;
  createdBy: string | null;
  reason: string | null;
  items: Array<{ itemId: string; label: string | null }>;
}) {
  return insertJob(input);
}

export async function cancelJob(input: { db: DbOrTx; jobId: string; orgId: string | null }) {
  return cancelJobRow(input);
}

/**
 * Runs the job in this process until it ends, is cancelled, or another process holds it.
 * Returns the job's final row, or null when this process did not get it.
 */
export async function runJob(db: Database, jobId: string, options: RunOptions = {}) {
  if (running.has(jobId)) return null;
  const leaseMs = options.leaseMs ?? DEFAULT_LEASE_MS;
  const claimed = await claimJob({ db, jobId, owner: PROCESS_ID, leaseMs });
  if (!claimed) return null;
  const handler = handlers.get(claimed.kind);
  if (!handler) throw new Error(`no handler for job kind ${claimed.kind}`);
  running.add(jobId);
  let stopped = false;
  const heartbeat = setInterval(
    () => {
      renewLease({ db, jobId, owner: PROCESS_ID, leaseMs })
        .then((row) => {
          if (!row) stopped = true;
        })
        .catch(() => {
          stopped = true;
        });
    },
    Math.max(200, Math.floor(leaseMs / 3)),
  );
  heartbeat.unref?.();
  try {
    for (;;) {
      if (stopped) break;
      const batch = await listUnfinishedItems({ db, jobId, limit: handler.concurrency * 8 });
      if (batch.length === 0) break;
      const queue = [...batch];
      const worker = async () => {
        for (let item = queue.shift(); item && !stopped; item = queue.shift()) {
          await runOneItem(db, handler, claimed, item);
        }
      };
      await Promise.all(Array.from({ length: handler.concurrency }, worker));
      // Cancellation is seen at the next renewal; check once per batch too.
      const now = await getJob({ db, jobId });
      if (now?.status !== "running" || now.leaseOwner !== PROCESS_ID) stopped = true;
    }
    if (stopped) return getJob({ db, jobId });
    const ended = await endJob({ db, jobId, owner: PROCESS_ID, status: "done" });
    if (ended) await handler.onDone?.(ended);
    return ended ?? getJob({ db, jobId });
  } catch (error) {
    await endJob({
      db,
      jobId,
      owner: PROCESS_ID,
      status: "failed",
      error: (error as Error).message.slice(0, 500),
    });
    throw error;
  } finally {
    clearInterval(heartbeat);
    running.delete(jobId);
  }
}

async function runOneItem(
  db: Database,
  handler: JobHandler,
  job: Job,
  item: { itemId: string; label: string | null; state: string },
) {
  await markItemsStarted({ db, jobId: job.id, itemIds: [item.itemId] });
  let finished = false;
  const ctx: ItemContext = {
    job,
    wasStarted: item.state === "started",
    finish: async (tx, outcome) => {
      await finishItem({
        db: tx,
        jobId: job.id,
        itemId: item.itemId,
        result: outcome.result,
        detail: outcome.detail ?? null,
      });
      finished = true;
    },
  };
  let outcome: ItemOutcome | undefined;
  try {
    outcome = await handler.runItem(item, ctx);
  } catch (error) {
    outcome = { result: "error", detail: (error as Error).message.slice(0, 500) };
  }
  if (!finished && outcome) await ctx.finish(db, outcome);
}

/** Starts a job in the background of this process (a page or action does not wait for it). */
export function startJobInBackground(db: Database, jobId: string, options?: RunOptions) {
  runJob(db, jobId, options).catch((error) => {
    console.error(`job ${jobId} failed: ${(error as Error).message}`);
  });
}

/** Takes over queued jobs and jobs whose process died; cheap enough to call on a page view. */
export async function resumeAbandonedJobs(db: Database, options?: RunOptions) {
  const rows = await listResumableJobs({ db });
  for (const row of rows) {
    if (handlers.has(row.kind) && !running.has(row.id)) startJobInBackground(db, row.id, options);
  }
  return rows.length;
}
