import "server-only";
import { getDb, openedDb } from "@/db";
import { listDueDeliveries } from "@/db/queries/webhooks";
import { type DeliveryResult, deliverWebhook } from "./deliver";

// Who runs deliveries. The delivery rows are the durable record (status, next attempt time), so
// whatever runs them may forget: a delivery handed over right after its event, a retry at its
// time, and every 15 s in every process a sweep for what is due and nobody ran (a process that
// died, an event whose hand-over was lost). Claiming is one statement (lib/webhooks/deliver.ts),
// so a delivery handed to two runners is attempted once.

const SWEEP_EVERY_MS = 15_000;
const SWEEP_BATCH = 100;
const CONCURRENCY = 4;

const holder = globalThis as typeof globalThis & {
  __mailwardenWebhooks?: {
    inFlight: Set<string>;
    waiting: string[];
    sweeper?: NodeJS.Timeout;
    kick?: NodeJS.Timeout;
  };
};
holder.__mailwardenWebhooks ??= { inFlight: new Set(), waiting: [] };
const state = holder.__mailwardenWebhooks;

function pump() {
  while (state.inFlight.size < CONCURRENCY && state.waiting.length > 0) {
    const id = state.waiting.shift();
    if (!id || state.inFlight.has(id)) continue;
    state.inFlight.add(id);
    run(id).finally(() => {
      state.inFlight.delete(id);
      pump();
    });
  }
}

async function run(id: string): Promise<DeliveryResult | null> {
  try {
    const result = await deliverWebhook(id);
    if (result.kind === "retry") retryAt(id, result.at);
    return result;
  } catch (error) {
    console.error(`[mailwarden] webhook delivery ${id}: ${(error as Error).message}`);
    return null;
  }
}

function retryAt(id: string, at: Date) {
  const wait = at.getTime() - Date.now();
  // Long waits are left to the sweep (a timer would not outlive a restart anyway).
  if (wait > 10 * 60_000) return;
  setTimeout(() => handOver([id]), Math.max(0, wait) + 50).unref();
}

function handOver(ids: string[]) {
  for (const id of ids) if (!state.waiting.includes(id)) state.waiting.push(id);
  pump();
}

/** Hands deliveries to a runner; returns at once. Call after their transaction committed. */
export async function dispatchWebhookDeliveries(ids: string[]): Promise<void> {
  if (ids.length > 0) handOver(ids);
}

/**
 * A sweep in a moment, for deliveries written without their ids coming back (inside another
 * statement). Debounced: a burst of sends costs one sweep query per process.
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

/** Runs every due delivery now; for the sweep and for tests. */
export async function sweepWebhookDeliveries(): Promise<number> {
  const ids = await listDueDeliveries({ db: await getDb(), limit: SWEEP_BATCH });
  handOver(ids);
  return ids.length;
}

/** Until every delivery handed over so far has finished its attempt (tests, shutdown). */
export async function webhookDeliveriesSettled(): Promise<void> {
  while (state.inFlight.size > 0 || state.waiting.length > 0) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

export function startWebhookSweeper() {
  if (state.sweeper) return;
  state.sweeper = setInterval(() => {
    openedDb()
      .then((db) => (db ? sweepWebhookDeliveries() : 0))
      .catch((error: Error) => console.error(`[mailwarden] webhook sweep: ${error.message}`));
  }, SWEEP_EVERY_MS);
  state.sweeper.unref();
}
