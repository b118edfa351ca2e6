import "server-only";
import type { PGlite } from "@electric-sql/pglite";
import type { Job, PgBoss, Queue, SendOptions } from "pg-boss";
import { getDb } from "@/db";
import { env } from "@/lib/env";

// The job queue every app process runs (ARCHITECTURE.md, "The queue"): pg-boss on the app's own
// database. On PGlite it shares the process's one PGlite instance through pg-boss's shipped
// adapter (`fromPglite`, `backend: "pglite"`: PGlite is one connection, so the adapter is the
// only sound way in); on PostgreSQL it opens its own small pg pool on DATABASE_URL. pg-boss
// keeps its tables in the `pgboss` schema, which it creates and migrates itself at start (under
// its own advisory lock), beside drizzle's migrations of `public`: the two never touch each
// other's objects.
//
// Workers are registered by name at any time; they start working once the queue has started,
// and every process started by instrumentation.ts starts it, as it starts the audit sealer.

export type { Job } from "pg-boss";

export const QUEUE_SCHEMA = "pgboss";

export type WorkerOptions = {
  /** Handlers running at once in this process (pg-boss `localConcurrency`). */
  concurrency?: number;
  /**
   * Handlers of one group (a job's `group.id` when it was sent) running at once in this process
   * (pg-boss `localGroupConcurrency`): while a group has that many, this process's workers fetch
   * other groups' jobs. Jobs sent without a group are not limited.
   */
  groupConcurrency?: number;
  /** How often an idle worker asks for jobs, in seconds (at least 0.5). */
  pollingIntervalSeconds?: number;
  /** The queue's own settings (created on first use): expiry, retries, policy. */
  queue?: Omit<Queue, "name">;
};

export type EnqueueOptions = SendOptions;

type Handler<T> = (data: T, job: Job<T>) => Promise<unknown>;
type Registration = { handler: Handler<unknown>; options: WorkerOptions; workId?: string };

type QueueState = {
  boss?: Promise<PgBoss>;
  workers: Map<string, Registration>;
  created: Map<string, Promise<void>>;
  isStopping: boolean;
};

// Kept on globalThis like the database handle: a module reload in `next dev` must not start a
// second pg-boss on the same PGlite.
const holder = globalThis as typeof globalThis & { __mailwardenQueue?: QueueState };
holder.__mailwardenQueue ??= { workers: new Map(), created: new Map(), isStopping: false };
const state = holder.__mailwardenQueue;

async function createBoss(): Promise<PgBoss> {
  const { PgBoss, fromPglite } = await import("pg-boss");
  const e = env();
  const common = {
    schema: QUEUE_SCHEMA,
    // Our own intervals are enough: no cron, and pg-boss's supervisor keeps expiry and retention.
    schedule: false,
    monitorVacuum: false,
    persistWarnings: false,
  } as const;
  let boss: PgBoss;
  if (e.DATABASE_URL) {
    boss = new PgBoss({
      ...common,
      connectionString: e.DATABASE_URL,
      max: e.QUEUE_POOL_SIZE,
      application_name: "mailwarden-queue",
    });
  } else {
    const db = await getDb();
    const client = (db as unknown as { $client: PGlite }).$client;
    boss = new PgBoss({ ...common, db: fromPglite(client), backend: "pglite" });
  }
  // pg-boss reports maintenance and fetch errors here; without a listener they would throw.
  boss.on("error", (error: Error) => {
    console.error(`[mailwarden] queue: ${error.name}: ${error.message}`);
  });
  await boss.start();
  return boss;
}

/** Starts this process's queue once (schema created or migrated on first start). */
export function startQueue(): Promise<PgBoss> {
  state.isStopping = false;
  if (!state.boss) {
    state.boss = createBoss().then(
      async (boss) => {
        for (const [name, registration] of state.workers)
          await startWorker(boss, name, registration);
        return boss;
      },
      (error: unknown) => {
        state.boss = undefined;
        throw error;
      },
    );
  }
  return state.boss;
}

function ensureQueue(boss: PgBoss, name: string, options: Omit<Queue, "name"> = {}) {
  let created = state.created.get(name);
  if (!created) {
    created = (async () => {
      if (!(await boss.getQueue(name))) await boss.createQueue(name, options);
    })().catch((error: unknown) => {
      state.created.delete(name);
      throw error;
    });
    state.created.set(name, created);
  }
  return created;
}

async function startWorker(boss: PgBoss, name: string, registration: Registration) {
  await ensureQueue(boss, name, registration.options.queue);
  registration.workId = await boss.work<unknown>(
    name,
    {
      localConcurrency: registration.options.concurrency ?? 1,
      ...(registration.options.groupConcurrency
        ? { localGroupConcurrency: registration.options.groupConcurrency }
        : {}),
      pollingIntervalSeconds:
        registration.options.pollingIntervalSeconds ?? env().QUEUE_POLL_SECONDS,
      batchSize: 1,
    },
    async (jobs) => {
      for (const job of jobs) await registration.handler(job.data, job);
    },
  );
}

/**
 * Puts a job on the named queue (created with `queueOptions` if it does not exist yet) and
 * returns its id, or null when a singleton policy already holds one. Starts the queue if this
 * process has not yet.
 */
export async function enqueue<T extends object>(
  name: string,
  data: T,
  options: EnqueueOptions & { queue?: Omit<Queue, "name"> } = {},
): Promise<string | null> {
  const { queue, ...send } = options;
  const boss = await startQueue();
  await ensureQueue(boss, name, queue ?? state.workers.get(name)?.options.queue);
  return boss.send(name, data, send);
}

/**
 * Runs `handler` for each job of the named queue in this process. A handler that throws fails
 * the attempt (pg-boss retries it as the queue's settings say); one that returns completes it.
 * Registering twice replaces nothing: the first registration stays.
 */
export async function registerWorker<T>(
  name: string,
  handler: Handler<T>,
  options: WorkerOptions = {},
): Promise<void> {
  if (state.workers.has(name)) return;
  const registration: Registration = { handler: handler as Handler<unknown>, options };
  state.workers.set(name, registration);
  if (state.boss) await startWorker(await state.boss, name, registration);
}

/**
 * Stops fetching, waits up to `timeoutMs` for running handlers, and closes pg-boss's own pool
 * (never the shared PGlite, which the database handle owns). Workers stay registered, so a
 * later startQueue() works them again.
 */
export async function stopQueue({ timeoutMs = 10_000 }: { timeoutMs?: number } = {}) {
  const pending = state.boss;
  if (!pending || state.isStopping) return;
  state.isStopping = true;
  try {
    const boss = await pending.catch(() => undefined);
    if (boss) await boss.stop({ graceful: true, close: true, timeout: timeoutMs });
  } finally {
    state.boss = undefined;
    state.created.clear();
    for (const registration of state.workers.values()) registration.workId = undefined;
    state.isStopping = false;
  }
}

/** Tests: forget every registered worker (after stopQueue). */
export function forgetWorkers(): void {
  state.workers.clear();
}
