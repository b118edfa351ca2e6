import "server-only";
import { createHash } from "node:crypto";
import type { Database } from "@/db";
import {
  findMessageByIdempotencyKey,
  type MessageResult,
  type MessageSender,
} from "@/db/queries/messages";
import type { SendRequest } from "./message";
import type { SendOutcome } from "./outcomes";

// Idempotency-Key handling for the send chokepoint: the request hash that tells a retry from a
// different message, the replay of a stored result, and the in-process map that lets a retry
// wait for a first request still being sent in this process (other processes are polled).

// A request that finds its Idempotency-Key held waits this long for the holder to finish.
const REPLAY_WAIT_MS = 90_000;
// Then it answers 409 with this Retry-After: the first request may settle any moment.
const IN_PROGRESS_RETRY_AFTER_SECONDS = 2;

const holder = globalThis as typeof globalThis & {
  __mailwardenInFlight?: Map<string, Promise<void>>;
};
holder.__mailwardenInFlight ??= new Map();
const inFlight = holder.__mailwardenInFlight;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Until `settles` settles or `ms` pass, whichever is first. */
async function waitAtMost(settles: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, ms);
  });
  await Promise.race([settles, timeout]).finally(() => clearTimeout(timer));
}

// Test seam: a test outlasts a shorter wait rather than 90 s.
const waitHolder = globalThis as typeof globalThis & { __mailwardenReplayWaitMs?: number };
export function useReplayWaitMs(ms: number | undefined): void {
  waitHolder.__mailwardenReplayWaitMs = ms;
}

export type IdempotencyScope = { orgId: string; sender: MessageSender; idempotencyKey: string };

function flightKey({ orgId, sender, idempotencyKey }: IdempotencyScope): string {
  return `${orgId}\u0000${sender.type}\u0000${sender.id}\u0000${idempotencyKey}`;
}

/** SHA-256 of the validated request in a fixed field order: same message, same hash. */
export function hashSendRequest(value: SendRequest): string {
  const canonical = [
    value.mailbox,
    value.to,
    value.cc,
    value.bcc,
    value.replyTo ?? null,
    value.subject,
    value.text ?? null,
    value.html ?? null,
  ];
  return createHash("sha256").update(JSON.stringify(canonical)).digest("hex");
}

/** The stored row of an earlier request with this key, if any. */
export function findEarlierRequest(db: Database, scope: IdempotencyScope) {
  return findMessageByIdempotencyKey({ db, ...scope });
}

/**
 * Marks the key as being sent by this process until the returned function is called, so a
 * concurrent retry here waits on it instead of polling. No key, nothing to mark.
 */
export function holdInFlight(scope: IdempotencyScope | null): () => void {
  if (scope === null) return () => {};
  const key = flightKey(scope);
  let settle = () => {};
  inFlight.set(key, new Promise<void>((resolve) => (settle = resolve)));
  return () => {
    inFlight.delete(key);
    settle();
  };
}

function replayOf(row: MessageResult): SendOutcome {
  return {
    kind: "replayed",
    id: row.id,
    status: row.status === "sent" ? "sent" : "failed",
    messageId: row.providerMessageId,
    smtpResponse: row.smtpResponse,
    errorCode: row.errorCode,
  };
}

/**
 * The key is already taken: the same body gets the first request's result (after waiting for
 * it to finish, possibly in another process; past the wait, "in progress"), a different body
 * gets a mismatch.
 */
export async function replay(
  db: Database,
  scope: IdempotencyScope,
  requestHash: string,
  first: MessageResult | null,
): Promise<SendOutcome> {
  const deadline = Date.now() + (waitHolder.__mailwardenReplayWaitMs ?? REPLAY_WAIT_MS);
  let row = first;
  let delay = 20;
  for (;;) {
    row ??= await findEarlierRequest(db, scope);
    if (!row)
      return inProgress("A request with this Idempotency-Key was just made; retry in a moment.");
    if (row.requestHash !== requestHash) return { kind: "idempotency_mismatch" };
    // A queued message's retry answers like its first request: accepted, see its status.
    if (row.isQueued) return { kind: "queued", id: row.id, isReplay: true };
    if (row.status !== "sending") return replayOf(row);
    const left = deadline - Date.now();
    if (left <= 0) {
      return inProgress(
        "The first request with this Idempotency-Key is still being sent; retry later.",
      );
    }
    const inProcess = inFlight.get(flightKey(scope));
    if (inProcess) await waitAtMost(inProcess, left);
    else {
      await sleep(delay);
      delay = Math.min(delay * 2, 250);
    }
    row = null;
  }
}

function inProgress(cause: string): SendOutcome {
  return {
    kind: "idempotency_in_progress",
    retryAfterSeconds: IN_PROGRESS_RETRY_AFTER_SECONDS,
    cause,
  };
}
