import { and, asc, eq } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { getDb } from "@/db";
import { getJob, listJobItems } from "@/db/queries/jobs";
import { auditEvents } from "@/db/schema";
import { createOwner } from "@/lib/testing/factories";
import { createJob, registerJobHandler, runJob } from "./runner";

// The runner with a job kind of the test's own: each item's work records what the database said
// of its job when it began, and one item's result cannot be recorded the first time (PostgreSQL
// refuses a NUL character in text), an error of the runner itself, not of the item's work.
const KIND = "test_runner_worker_error";
const calls: Array<{ itemId: string; jobStatus: string | undefined }> = [];
let poisonedOnce = false;

registerJobHandler({
  kind: KIND,
  concurrency: 2,
  runItem: async (item, ctx) => {
    const db = await getDb();
    const status = async () => (await getJob({ db, jobId: ctx.job.id }))?.status;
    calls.push({ itemId: item.itemId, jobStatus: await status() });
    if (item.itemId === "a-poisoned" && !poisonedOnce) {
      poisonedOnce = true;
      return { result: "ok", detail: "cannot be stored: \u0000" };
    }
    // Still in hand while the other worker fails: a few round trips of the database (which
    // answers in order), then what it says of the job once more, as the result is recorded.
    for (let i = 0; i < 3; i++) await status();
    calls.push({ itemId: `${item.itemId} (end)`, jobStatus: await status() });
    return { result: "ok", detail: null };
  },
});

describe("the job runner", { timeout: 120_000 }, () => {
  it("stops every worker before it marks a job its own error interrupted, and the job resumes where it stopped", async () => {
    const db = await getDb();
    const { orgId, user } = await createOwner("runner");
    const ids = ["a-poisoned", ...Array.from({ length: 11 }, (_, i) => `item-${10 + i}`)];
    const job = await createJob({
      db,
      kind: KIND,
      orgId,
      createdBy: user.id,
      reason: "test",
      items: ids.map((itemId) => ({ itemId, label: null })),
    });

    await expect(runJob(db, job.id)).rejects.toThrow();
    // A few round trips of the database, which answers in order: a worker still going would
    // have begun another item meanwhile.
    for (let i = 0; i < 3; i++) await getJob({ db, jobId: job.id });
    const interrupted = await getJob({ db, jobId: job.id });
    expect(interrupted?.status).toBe("queued");
    expect(interrupted?.error).toMatch(/^Interrupted: /);
    // Only the items in hand when it failed were begun and ended, all while the job was running.
    expect(calls.filter((c) => !c.itemId.endsWith("(end)")).length).toBeLessThanOrEqual(2);
    expect(calls.every((c) => c.jobStatus === "running")).toBe(true);
    const untouched = (await listJobItems({ db, jobId: job.id })).filter(
      (i) => i.state === "pending",
    );
    expect(untouched.length).toBeGreaterThanOrEqual(ids.length - 2);

    // Queued again, the next process (here: this one) claims it and finishes it.
    const resumed = await runJob(db, job.id);
    expect(resumed?.status).toBe("done");
    expect(resumed?.done).toBe(ids.length);
    const items = await listJobItems({ db, jobId: job.id });
    expect(items.every((i) => i.state === "finished" && i.result === "ok")).toBe(true);
    // Every item's work ran once, but the one whose result could not be stored (twice).
    const runs = new Map<string, number>();
    for (const c of calls.filter((c) => !c.itemId.endsWith("(end)")))
      runs.set(c.itemId, (runs.get(c.itemId) ?? 0) + 1);
    expect(runs.get("a-poisoned")).toBe(2);
    expect([...runs].filter(([id, n]) => id !== "a-poisoned" && n !== 1)).toEqual([]);
    expect(calls.every((c) => c.jobStatus === "running")).toBe(true);

    const events = await db
      .select()
      .from(auditEvents)
      .where(and(eq(auditEvents.orgId, orgId), eq(auditEvents.targetId, job.id)))
      // In the order they were written (PostgreSQL returns an unordered scan in any order).
      .orderBy(asc(auditEvents.id));
    expect(events.map((e) => [e.action, e.outcome, e.metadata.resumes])).toEqual([
      ["job.failed", "failure", true],
      ["job.completed", "success", false],
    ]);
  });
});
