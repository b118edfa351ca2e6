import "server-only";
import { randomUUID } from "node:crypto";
import { hostname } from "node:os";
import { getDb } from "@/db";
import {
  countInstancesSeenSince,
  recordEncryptionKeysSeen,
  recordInstanceHeartbeat,
} from "@/db/queries/deployment";
import { keyring } from "@/lib/crypto/runtime";

// Every process says it is alive every 30 s. The in-process rate limiter counts per process, so
// the Security page warns when it is in use and more than one process has been seen lately.

export const HEARTBEAT_MS = 30_000;
/** A process is "seen" when its last heartbeat is at most this old. */
export const SEEN_WITHIN_MS = 120_000;

const holder = globalThis as typeof globalThis & {
  __mailwardenInstance?: { id: string; startedAt: Date; timer?: NodeJS.Timeout };
};

function self() {
  holder.__mailwardenInstance ??= { id: randomUUID(), startedAt: new Date() };
  return holder.__mailwardenInstance;
}

/** One heartbeat of this process, and the key ids it loaded (their age starts at first sight). */
export async function beat(now = new Date()): Promise<void> {
  const db = await getDb();
  const me = self();
  await recordInstanceHeartbeat({
    db,
    id: me.id,
    host: hostname(),
    pid: process.pid,
    startedAt: me.startedAt,
    now,
  });
  let ids: string[] = [];
  try {
    ids = [...keyring().byId.keys()];
  } catch {
    // No key configured: encryption fails closed and the Security page says so.
  }
  await recordEncryptionKeysSeen({ db, ids });
}

export function startInstanceHeartbeat(): void {
  const me = self();
  if (me.timer) return;
  const run = () =>
    beat().catch((error) =>
      console.error(`[heartbeat] failed: ${(error as { code?: string }).code ?? "error"}`),
    );
  void run();
  me.timer = setInterval(run, HEARTBEAT_MS);
  me.timer.unref?.();
}

export async function countInstancesSeen(now = new Date()): Promise<number> {
  return countInstancesSeenSince({
    db: await getDb(),
    since: new Date(now.getTime() - SEEN_WITHIN_MS),
  });
}
