import { randomUUID } from "node:crypto";
import { sql } from "drizzle-orm";
import { afterAll, describe, expect, it } from "vitest";
import { getDb } from "@/db";
import { enqueue, QUEUE_SCHEMA, registerWorker, startQueue, stopQueue } from "./index";

// The queue on the app's own database (PGlite here, PostgreSQL with DATABASE_URL): its schema
// is created at start, jobs are worked by registered workers, and a job enqueued while no
// worker runs survives a stop and is worked after the next start.

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function until<T>(read: () => T | Promise<T>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (value) return value;
    if (Date.now() > deadline) throw new Error("timed out");
    await sleep(100);
  }
}

afterAll(async () => {
  await stopQueue();
});

describe("the job queue", () => {
  it("creates its schema in the app's database and works an enqueued job", async () => {
    await startQueue();
    const db = await getDb();
    const tables = await db.execute(
      sql`select count(*)::int as n from information_schema.tables where table_schema = ${QUEUE_SCHEMA}`,
    );
    expect((tables as unknown as { rows: { n: number }[] }).rows[0]?.n).toBeGreaterThan(0);

    const name = `test-${randomUUID().slice(0, 8)}`;
    const seen: string[] = [];
    await registerWorker<{ word: string }>(
      name,
      async (data) => {
        seen.push(data.word);
      },
      { pollingIntervalSeconds: 0.5 },
    );
    const id = await enqueue(name, { word: "hello" });
    expect(id).toEqual(expect.any(String));
    await until(() => seen.length === 1);
    expect(seen).toEqual(["hello"]);
  });

  it("keeps a job enqueued while nothing works it, and works it after a restart", async () => {
    const name = `test-${randomUUID().slice(0, 8)}`;
    await startQueue();
    await enqueue(name, { n: 7 });
    await stopQueue();

    const seen: number[] = [];
    await registerWorker<{ n: number }>(name, async (data) => void seen.push(data.n), {
      pollingIntervalSeconds: 0.5,
    });
    // Not started: nothing is worked.
    await sleep(800);
    expect(seen).toEqual([]);
    await startQueue();
    await until(() => seen.length === 1);
    expect(seen).toEqual([7]);
  });

  it("retries a handler that throws, as the queue's settings say", async () => {
    const name = `test-${randomUUID().slice(0, 8)}`;
    let calls = 0;
    await registerWorker(
      name,
      async () => {
        calls++;
        if (calls === 1) throw new Error("first attempt fails");
      },
      { pollingIntervalSeconds: 0.5, queue: { retryLimit: 2, retryDelay: 0 } },
    );
    await enqueue(name, {});
    await until(() => calls === 2);
    await sleep(1_200);
    expect(calls).toBe(2);
  });

  it("stops cleanly: a running handler finishes before stopQueue resolves", async () => {
    const name = `test-${randomUUID().slice(0, 8)}`;
    let started = false;
    let finished = false;
    await registerWorker(
      name,
      async () => {
        started = true;
        await sleep(1_000);
        finished = true;
      },
      { pollingIntervalSeconds: 0.5 },
    );
    await startQueue();
    await enqueue(name, {});
    await until(() => started);
    await stopQueue();
    expect(finished).toBe(true);
  });
});
