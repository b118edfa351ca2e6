import "server-only";
import { and, desc, eq, exists, inArray, isNull, lt, or, sql } from "drizzle-orm";
import type { DbOrTx } from "@/db";
import { type JobStatus, jobItems, jobs } from "@/db/schema";

// Long operations. A job's items are its unit of progress: an item is `pending`, then
// `started` (its work may have reached the outside world), then `finished` with a result.
// orgId null is a deployment-wide job; org-scoped reads always name the organisation.

export async function insertJob({
  db,
  kind,
  orgId,
  createdBy,
  reason,
  items,
}: {
  db: DbOrTx;
  kind: string;
  orgId: string | null;
  createdBy: string | null;
  reason: string | null;
  items: Array<{ itemId: string; label: string | null }>;
}) {
  const [job] = await db
    .insert(jobs)
    .values({ kind, orgId, createdBy, reason, total: items.length })
    .returning();
  if (!job) throw new Error("job not created");
  for (let i = 0; i < items.length; i += 1000) {
    await db
      .insert(jobItems)
      .values(items.slice(i, i + 1000).map((item) => ({ jobId: job.id, ...item })));
  }
  return job;
}

/** The newest job of a kind for an organisation (or deployment-wide with orgId null). */
export async function latestJob({
  db,
  kind,
  orgId,
}: {
  db: DbOrTx;
  kind: string;
  orgId: string | null;
}) {
  const [row] = await db
    .select()
    .from(jobs)
    .where(and(eq(jobs.kind, kind), orgId ? eq(jobs.orgId, orgId) : isNull(jobs.orgId)))
    .orderBy(desc(jobs.createdAt))
    .limit(1);
  return row ?? null;
}

export async function getJob({ db, jobId }: { db: DbOrTx; jobId: string }) {
  const [row] = await db.select().from(jobs).where(eq(jobs.id, jobId));
  return row ?? null;
}

/**
 * Takes the job for this process when it is queued, or running under a lease that expired (the
 * process that held it died). Null when another live process holds it or it has ended.
 */
export async function claimJob({
  db,
  jobId,
  owner,
  leaseMs,
}: {
  db: DbOrTx;
  jobId: string;
  owner: string;
  leaseMs: number;
}) {
  const [row] = await db
    .update(jobs)
    .set({
      status: "running",
      leaseOwner: owner,
      leaseUntil: sql`now() + make_interval(secs => ${leaseMs / 1000})`,
      startedAt: sql`coalesce(${jobs.startedAt}, now())`,
      runs: sql`${jobs.runs} + 1`,
    })
    .where(
      and(
        eq(jobs.id, jobId),
        or(
          eq(jobs.status, "queued"),
          and(
            eq(jobs.status, "running"),
            or(isNull(jobs.leaseUntil), lt(jobs.leaseUntil, sql`now()`)),
          ),
        ),
      ),
    )
    .returning();
  return row ?? null;
}

/** Renews the lease; null when the job was cancelled or another process took it over. */
export async function renewLease({
  db,
  jobId,
  owner,
  leaseMs,
}: {
  db: DbOrTx;
  jobId: string;
  owner: string;
  leaseMs: number;
}) {
  const [row] = await db
    .update(jobs)
    .set({ leaseUntil: sql`now() + make_interval(secs => ${leaseMs / 1000})` })
    .where(and(eq(jobs.id, jobId), eq(jobs.leaseOwner, owner), eq(jobs.status, "running")))
    .returning({ id: jobs.id });
  return row ?? null;
}

/** Jobs another process should take over: queued, or running with an expired lease. */
export async function listResumableJobs({ db }: { db: DbOrTx }) {
  return db
    .select({ id: jobs.id, kind: jobs.kind })
    .from(jobs)
    .where(
      or(
        eq(jobs.status, "queued"),
        and(
          eq(jobs.status, "running"),
          or(isNull(jobs.leaseUntil), lt(jobs.leaseUntil, sql`now()`)),
        ),
      ),
    );
}

/** Items not finished yet, `started` ones first (they were under way when a process died). */
export async function listUnfinishedItems({
  db,
  jobId,
  limit,
}: {
  db: DbOrTx;
  jobId: string;
  limit: number;
}) {
  return db
    .select({ itemId: jobItems.itemId, label: jobItems.label, state: jobItems.state })
    .from(jobItems)
    .where(and(eq(jobItems.jobId, jobId), inArray(jobItems.state, ["pending", "started"])))
    .orderBy(desc(jobItems.state), jobItems.itemId)
    .limit(limit);
}

/**
 * Marks items `started` for the process that holds the job, in the same statement that checks
 * it still does: the job `running` under this owner's lease. The ids it marked (an item already
 * `started`, resumed after a process died, counts too); none once the job was cancelled or taken
 * over, so no item starts after that, whichever kind of job it is.
 */
export async function markItemsStarted({
  db,
  jobId,
  owner,
  itemIds,
}: {
  db: DbOrTx;
  jobId: string;
  owner: string;
  itemIds: string[];
}): Promise<string[]> {
  if (itemIds.length === 0) return [];
  const rows = await db
    .update(jobItems)
    .set({ state: "started" })
    .where(
      and(
        eq(jobItems.jobId, jobId),
        inArray(jobItems.itemId, itemIds),
        inArray(jobItems.state, ["pending", "started"]),
        exists(
          db
            .select({ one: sql`1` })
            .from(jobs)
            .where(and(eq(jobs.id, jobId), eq(jobs.status, "running"), eq(jobs.leaseOwner, owner))),
        ),
      ),
    )
    .returning({ itemId: jobItems.itemId });
  return rows.map((r) => r.itemId);
}

/**
 * Counts an attempt whose work threw and keeps its error; the item stays unfinished, to be tried
 * again. The attempts so far, or null when the item is finished (its result committed after all).
 */
export async function recordItemFailure({
  db,
  jobId,
  itemId,
  detail,
}: {
  db: DbOrTx;
  jobId: string;
  itemId: string;
  detail: string;
}) {
  const [row] = await db
    .update(jobItems)
    .set({ attempts: sql`${jobItems.attempts} + 1`, detail })
    .where(
      and(
        eq(jobItems.jobId, jobId),
        eq(jobItems.itemId, itemId),
        inArray(jobItems.state, ["pending", "started"]),
      ),
    )
    .returning({ attempts: jobItems.attempts });
  return row?.attempts ?? null;
}

/** Records an item's result once; false when it was already finished (never counted twice). */
export async function finishItem({
  db,
  jobId,
  itemId,
  result,
  detail,
}: {
  db: DbOrTx;
  jobId: string;
  itemId: string;
  result: string;
  detail: string | null;
}) {
  const rows = await db
    .update(jobItems)
    .set({ state: "finished", result, detail, finishedAt: sql`now()` })
    .where(
      and(
        eq(jobItems.jobId, jobId),
        eq(jobItems.itemId, itemId),
        inArray(jobItems.state, ["pending", "started"]),
      ),
    )
    .returning({ itemId: jobItems.itemId });
  return rows.length > 0;
}

export async function endJob({
  db,
  jobId,
  owner,
  status,
  error,
}: {
  db: DbOrTx;
  jobId: string;
  owner: string;
  status: Extract<JobStatus, "done" | "failed">;
  error?: string | null;
}) {
  const counts = await countItemResults({ db, jobId });
  const done = counts.reduce((n, c) => n + c.count, 0);
  const failed = counts.filter((c) => c.failed).reduce((n, c) => n + c.count, 0);
  const [row] = await db
    .update(jobs)
    .set({ status, done, failed, error: error ?? null, finishedAt: sql`now()`, leaseUntil: null })
    .where(and(eq(jobs.id, jobId), eq(jobs.leaseOwner, owner), eq(jobs.status, "running")))
    .returning();
  return row ?? null;
}

/**
 * Gives an interrupted job back to the queue, once this process's workers have all stopped: the
 * next process to look claims it (claimJob), so it never has two runners.
 */
export async function requeueJob({
  db,
  jobId,
  owner,
  error,
}: {
  db: DbOrTx;
  jobId: string;
  owner: string;
  error: string;
}) {
  const [row] = await db
    .update(jobs)
    .set({ status: "queued", error, leaseOwner: null, leaseUntil: null })
    .where(and(eq(jobs.id, jobId), eq(jobs.leaseOwner, owner), eq(jobs.status, "running")))
    .returning();
  return row ?? null;
}

/** Cancels a job of this organisation that has not ended; items already finished stay. */
export async function cancelJobRow({
  db,
  jobId,
  orgId,
}: {
  db: DbOrTx;
  jobId: string;
  orgId: string | null;
}) {
  const [row] = await db
    .update(jobs)
    .set({ status: "cancelled", finishedAt: sql`now()`, leaseUntil: null })
    .where(
      and(
        eq(jobs.id, jobId),
        orgId ? eq(jobs.orgId, orgId) : isNull(jobs.orgId),
        inArray(jobs.status, ["queued", "running"]),
      ),
    )
    .returning();
  return row ?? null;
}

/** Finished items per result; `failed` marks results that are not a success. */
export async function countItemResults({ db, jobId }: { db: DbOrTx; jobId: string }) {
  const rows = await db
    .select({ result: jobItems.result, count: sql<number>`count(*)::int` })
    .from(jobItems)
    .where(and(eq(jobItems.jobId, jobId), eq(jobItems.state, "finished")))
    .groupBy(jobItems.result);
  return rows.map((r) => ({
    result: r.result ?? "",
    count: Number(r.count),
    failed: r.result !== "revoked" && r.result !== "reencrypted" && r.result !== "unchanged",
  }));
}

export async function listJobItems({ db, jobId }: { db: DbOrTx; jobId: string }) {
  return db
    .select({
      itemId: jobItems.itemId,
      label: jobItems.label,
      state: jobItems.state,
      result: jobItems.result,
      detail: jobItems.detail,
      attempts: jobItems.attempts,
    })
    .from(jobItems)
    .where(eq(jobItems.jobId, jobId))
    .orderBy(jobItems.label, jobItems.itemId);
}
