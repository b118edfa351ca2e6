import "server-only";
import { openedDb } from "@/db";
import { sealPending } from "./seal";

// The background sealer of this process. Every process that writes audit events runs one: a
// write wakes it after a short debounce (so a burst of sends is sealed in one batch), and an
// interval picks up what other processes wrote and what a wake-up missed because the writing
// transaction had not committed yet. Several sealers are safe at once: each chain's advisory
// lock lets one seal at a time. It only uses a database the process has already opened, so a
// script holding its own PGlite handle never gets a second one opened behind its back.

const DEBOUNCE_MS = 150;
const INTERVAL_MS = 5_000;

type SealerState = {
  debounce?: NodeJS.Timeout;
  interval?: NodeJS.Timeout;
  running?: Promise<void>;
  isRequested: boolean;
  reported: Set<string>;
  /** Chains that refused to be sealed, and until when they are left alone (seal.ts). */
  resting: Map<string, number>;
};

const holder = globalThis as typeof globalThis & { __mailwardenSealer?: SealerState };

function state(): SealerState {
  holder.__mailwardenSealer ??= { isRequested: false, reported: new Set(), resting: new Map() };
  return holder.__mailwardenSealer;
}

/** Starts the interval once per process; timers never keep a process alive. */
export function startAuditSealer() {
  const s = state();
  if (s.interval) return;
  s.interval = setInterval(() => void runSealer(), INTERVAL_MS);
  s.interval.unref();
}

/** Asks for a seal shortly; many calls within the debounce window make one run. */
export function nudgeAuditSealer() {
  startAuditSealer();
  const s = state();
  if (s.debounce) return;
  s.debounce = setTimeout(() => {
    s.debounce = undefined;
    void runSealer();
  }, DEBOUNCE_MS);
  s.debounce.unref();
}

function runSealer(): Promise<void> {
  const s = state();
  if (s.running) {
    s.isRequested = true;
    return s.running;
  }
  s.running = (async () => {
    do {
      s.isRequested = false;
      const db = await openedDb();
      if (!db) return;
      try {
        await sealPending({ db, resting: s.resting });
      } catch (error) {
        // Once per distinct problem: a chain that refuses to seal would otherwise log every tick.
        const message = (error as Error).message;
        if (!s.reported.has(message)) {
          s.reported.add(message);
          console.error(`[mailwarden] audit sealer: ${message}`);
        }
      }
    } while (s.isRequested);
  })().finally(() => {
    s.running = undefined;
  });
  return s.running;
}

/** Stops the timers and waits for a run in progress, e.g. before closing the database. */
export async function stopAuditSealer() {
  const s = state();
  clearTimeout(s.debounce);
  clearInterval(s.interval);
  s.debounce = undefined;
  s.interval = undefined;
  await s.running;
}
