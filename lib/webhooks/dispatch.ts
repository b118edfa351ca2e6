import "server-only";
import { getDb, openedDb } from "@/db";
import { markDeliveriesEnqueued, sweepDueDeliveries } from "@/db/queries/webhooks";
import { enqueue, registerWorker } from "@/lib/queue";
import { deliverWebhook } from "./deliver";

// Deliveries run on the job queue (lib/queue, pg-boss): one job is one attempt of one delivery.
// The delivery rows stay the record (status, attempts, next attempt time); a job only says
// "attempt this one now". A retry is a new job with `startAfter` = the next attempt time, so a
// restart loses nothing that was queued. Claiming is one statement (lib/webhooks/deliver.ts),
// so a delivery with two jobs is still attempted once per due time.
//
// The sweep (every 15 s in every process, and 100 ms after an API send wrote events inside its
// own statement) puts on the queue what is due and has no job: deliveries never enqueued (their
// ids did not come back), those whose job was lost (due and enqueued both more than two
// minutes ago: a delivery waiting in a backlog is not enqueued again by every sweep), and
// those whose attempt's process died (lapsed lease). It marks them in the same statement, so two
// processes sweeping at once enqueue each delivery once.
//
// Fairness: every job is sent in its organisation's group (pg-boss `group.id`), and a process
// runs at most ORG_CONCURRENCY of one organisation's attempts at once; while an organisation
// has that many, the process's other workers fetch other organisations' jobs, oldest first. So
// an organisation whose receivers hang (each attempt can hold a worker 5 s in DNS and 10 s in
// HTTP) holds at most half of each process's workers, and the rest keep delivering everyone
// else's. The bound is per process (pg-boss counts it in memory: exact, nothing to clean up
// after a crash): with several processes one organisation holds at most ORG_CONCURRENCY in each.

export const WEBHOOK_QUEUE = "webhook-deliver";
const SWEEP_EVERY_MS = 15_000;
const SWEEP_BATCH = 200;
export const CONCURRENCY = 4;
export const ORG_CONCURRENCY = 2;

type Job = { deliveryId: string };

/** One attempt of the delivery, in its organisation's group, now or at `startAfter`. */
function enqueueAttempt(orgId: string, deliveryId: string, startAfter?: Date) {
  return enqueue<Job>(
    WEBHOOK_QUEUE,
    { deliveryId },
    { group: { id: orgId }, ...(startAfter ? { startAfter } : {}) },
  );
}

const holder = globalThis as typeof globalThis & {
  __mailwardenWebhooks?: { sweeper?: NodeJS.Timeout; kick?: NodeJS.Timeout };
};
holder.__mailwardenWebhooks ??= {};
const state = holder.__mailwardenWebhooks;

async function work({ deliveryId }: Job): Promise<void> {
  const result = await deliverWebhook(deliveryId);
  if (result.kind === "retry") {
    await enqueueAttempt(result.orgId, deliveryId, result.at);
  }
}

/**
 * Puts the organisation's deliveries on the queue; call after the transaction that wrote them
 * committed. Never throws: the change it follows is done, and a delivery that could not be
 * enqueued is still due, for the sweep to find.
 */
export async function dispatchWebhookDeliveries(orgId: string, ids: string[]): Promise<void> {
  if (ids.length === 0) return;
  try {
    for (const deliveryId of ids) await enqueueAttempt(orgId, deliveryId);
    await markDeliveriesEnqueued({ db: await getDb(), ids });
  } catch (error) {
    console.error(`[mailwarden] webhook deliveries not enqueued: ${(error as Error).message}`);
  }
}

/** Enqueues what is due and has no job; returns how many. */
export async function sweepWebhookDeliveries(): Promise<number> {
  const due = await sweepDueDeliveries({ db: await getDb(), limit: SWEEP_BATCH });
  for (const { id, orgId } of due) await enqueueAttempt(orgId, id);
  return due.length;
}

/**
 * A sweep in a moment, for deliveries written without their ids coming back (inside another
 * statement). Debounced: a burst of sends costs one sweep per process.
 */
export function kickWebhookSweep() {
  if (state.kick) return;
  state.kick = setTimeout(() => {
    state.kick = undefined;
    sweepWebhookDeliveries().catch((error: Error) =>
      console.error(`[mailwarden] webhook sweep: ${error.message}`),
    );
  }, 100);
  state.kick.unref();
}

/** Registers the worker (it runs once the queue starts) and the periodic sweep. */
export async function startWebhooks({
  pollingIntervalSeconds,
  sweep = true,
}: {
  pollingIntervalSeconds?: number;
  /** Tests sweep when they choose to. */
  sweep?: boolean;
} = {}) {
  await registerWorker<Job>(WEBHOOK_QUEUE, work, {
    concurrency: CONCURRENCY,
    groupConcurrency: ORG_CONCURRENCY,
    ...(pollingIntervalSeconds ? { pollingIntervalSeconds } : {}),
    // Our rows hold the schedule: a handler that throws is not retried by pg-boss; the sweep
    // finds the delivery again when its lease lapses.
    queue: { retryLimit: 0 },
  });
  if (state.sweeper || !sweep) return;
  state.sweeper = setInterval(() => {
    openedDb()
      .then((db) => (db ? sweepWebhookDeliveries() : 0))
      .catch((error: Error) => console.error(`[mailwarden] webhook sweep: ${error.message}`));
  }, SWEEP_EVERY_MS);
  state.sweeper.unref();
}
