import "server-only";
import { randomUUID } from "node:crypto";
import os from "node:os";
import type { Database, DbOrTx } from "@/db";
import {
  cancelJobRow,
  claimJob,
  countItemResults,
  endJob,
  finishItem,
  getJob,
  insertJob,
  listResumableJobs,
  listUnfinishedItems,
  markItemsStarted,
  recordItemFailure,
  renewLease,
  requeueJob,
} from "@/db/queries/jobs";
import type { Job } from "@/db/schema";
import { writeAuditEvent } from "@/lib/audit/write";

// The generic runner of long operations. A job and its items live in the database, so any
// process can finish what another started: the running process holds a lease it renews; once
// the lease has expired (that process died), the next process to look takes the job over and
// works through the items not finished yet. An item's result is recorded once, in the handler's
// own transaction where the handler has one, so a finished item is never done again.
//
// An item whose work throws (its transaction rolled back) stays unfinished and is tried again in
// the next batch, or by the run that resumes the job, up to MAX_ITEM_ATTEMPTS; then it is
// finished as `error` and the job ends `failed`, never `done`. An error of the runner itself (the
// database unavailable) stops every worker before the job is marked: it goes back to the queue
// for the next process to claim, MAX_JOB_RUNS runs at most, then it ends `failed`. A job's end
// is audited (job.completed, job.failed) in the transaction that records it.

/** Tries of one item whose work throws, before it is finished as `error`. */
export const MAX_ITEM_ATTEMPTS = 3;
/** Runs of one job (claims, resumes included) before an interrupted one is given up. */
export const MAX_JOB_RUNS = 5;

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
  /**
   * What the job's end event says beyond the counts: items finished without an error that still
   * left something undone (`warning`: the event's outcome is failure), in the event's metadata.
   */
  report?: (counts: Array<{ result: string; count: number }>) => {
    warning: boolean;
    metadata: Record<string, unknown>;
  };
  /** Runs once after the last item, when the job ended (done, or failed with items in error). */
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
          try {
            // Not started: the job was cancelled or taken over since. Only items in hand finish.
            if (!(await runOneItem(db, handler, claimed, item))) stopped = true;
          } catch (error) {
            // The others finish the item in hand and take no other.
            stopped = true;
            throw error;
          }
        }
      };
      const settled = await Promise.allSettled(Array.from({ length: handler.concurrency }, worker));
      const failure = settled.find((r) => r.status === "rejected");
      if (failure) throw failure.reason;
      // An item starts only while the job is still ours (markItemsStarted); this check ends the
      // run when the batch happened to finish just as the job was cancelled.
      const now = await getJob({ db, jobId });
      if (now?.status !== "running" || now.leaseOwner !== PROCESS_ID) stopped = true;
    }
    if (stopped) return getJob({ db, jobId });
    const counts = await countItemResults({ db, jobId });
    const errors = counts.find((c) => c.result === "error");
    const ended = await endAudited(db, claimed, {
      report: handler.report?.(counts),
      status: errors ? "failed" : "done",
      error: errors
        ? `${errors.count} of ${claimed.total} item${claimed.total === 1 ? "" : "s"} failed (tried ${MAX_ITEM_ATTEMPTS} times each, or an error without retry); see each item's result.`
        : null,
    });
    if (ended) await handler.onDone?.(ended);
    return ended ?? getJob({ db, jobId });
  } catch (error) {
    stopped = true;
    const message = describeError(error);
    // Every worker has stopped (allSettled above): marking the job now leaves no runner behind.
    await (claimed.runs < MAX_JOB_RUNS
      ? endAudited(db, claimed, { status: "queued", error: `Interrupted: ${message}` })
      : endAudited(db, claimed, {
          status: "failed",
          error: `Interrupted ${claimed.runs} times, given up: ${message}`,
        })
    ).catch(() => {
      // The database is not answering: the lease expires and the next process resumes it.
    });
    throw error;
  } finally {
    clearInterval(heartbeat);
    running.delete(jobId);
  }
}

/**
 * Ends the job (or gives it back to the queue) and audits it in one transaction: job.completed,
 * or job.failed (`resumes` when it went back to the queue). Null when this process no longer
 * held it (cancelled, or taken over).
 */
async function endAudited(
  db: Database,
  job: Job,
  end: {
    status: "done" | "failed" | "queued";
    error: string | null;
    report?: ReturnType<NonNullable<JobHandler["report"]>>;
  },
) {
  return db.transaction(async (tx) => {
    const row =
      end.status === "queued"
        ? await requeueJob({ db: tx, jobId: job.id, owner: PROCESS_ID, error: end.error ?? "" })
        : await endJob({
            db: tx,
            jobId: job.id,
            owner: PROCESS_ID,
            status: end.status,
            error: end.error,
          });
    if (!row) return null;
    await writeAuditEvent(tx, {
      orgId: job.orgId,
      actor: job.createdBy
        ? { type: "user", id: job.createdBy, label: job.kind }
        : { type: "system", label: job.kind },
      action: end.status === "done" ? "job.completed" : "job.failed",
      target: { type: "job", id: job.id },
      outcome: end.status === "done" && !end.report?.warning ? "success" : "failure",
      metadata: {
        kind: job.kind,
        total: row.total,
        ...(end.status === "queued" ? {} : { done: row.done, failed: row.failed }),
        ...end.report?.metadata,
        ...(end.error ? { error: end.error } : {}),
        resumes: end.status === "queued",
      },
    });
    return row;
  });
}

async function runOneItem(
  db: Database,
  handler: JobHandler,
  job: Job,
  item: { itemId: string; label: string | null; state: string },
): Promise<boolean> {
  // One statement checks the job is still running under this process and starts the item, so
  // a cancel committed before it is always seen: nothing reaches the outside world after it.
  const started = await markItemsStarted({
    db,
    jobId: job.id,
    owner: PROCESS_ID,
    itemIds: [item.itemId],
  });
  if (started.length === 0) return false;
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
    // Its transaction rolled back (or its result committed before something else threw).
    const message = describeError(error);
    const attempts = await recordItemFailure({
      db,
      jobId: job.id,
      itemId: item.itemId,
      detail: message,
    });
    if (attempts === null || attempts < MAX_ITEM_ATTEMPTS) return true;
    finished = false;
    outcome = { result: "error", detail: `Failed ${attempts} times. The last error: ${message}` };
  }
  if (!finished && outcome) await ctx.finish(db, outcome);
  return true;
}

/**
 * An error in a few plain words for the job's row, the page and the audit log: a failed query's
 * own message (the database's), never the statement and its parameters that the driver's
 * message quotes; no NUL, which PostgreSQL text refuses.
 */
export function describeError(error: unknown): string {
  const cause = (error as { cause?: unknown })?.cause;
  const message =
    cause instanceof Error && (error as Error).message.startsWith("Failed query")
      ? cause.message
      : error instanceof Error
        ? error.message
        : String(error);
  return message.replaceAll("\0", "").slice(0, 500);
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
