import "server-only";
import { randomUUID } from "node:crypto";
import { type Database, getDb } from "@/db";
import type { MessageSender } from "@/db/queries/messages";
import {
  cancelQueuedMessage,
  mailboxesWithDueMessages,
  queuedMessageInsert,
} from "@/db/queries/queued-messages";
import { writeAuditEvent, writeAuditEventWithChange } from "@/lib/audit/write";
import type { CallContext, SenderContext } from "@/lib/auth/context";
import { encryptField } from "@/lib/crypto";
import { keyring } from "@/lib/crypto/runtime";
import { env } from "@/lib/env";
import { enqueue, registerWorker } from "@/lib/queue";
import type { Mailbox } from "./delivery";
import type { SendRequest } from "./message";
import { attemptNextQueued, BODY_FIELD, settleInterruptedAttempts } from "./send-queued";

// Queued messages (ARCHITECTURE.md, "Queued messages"): `Prefer: respond-async` stores the
// validated message (body sealed) as a `queued` row and wakes its mailbox's worker. A worker
// is a pg-boss job `mail.drain` per mailbox (at most one waiting per mailbox: singletonKey,
// policy `short`) that runs attempts one after another at the mailbox's pace for up to a
// slice, then hands over to a fresh job. The policy does not keep another process from draining
// the same mailbox (an active job does not stop a new one): each attempt reserves its message
// first (send-queued.ts), so two drainers take different messages and share the pace. Every
// process also sweeps every few seconds: it wakes the workers of mailboxes with due messages (a
// retry's time came, a hold ended, a wake-up was lost with its process) and settles attempts
// whose process died.

export const DRAIN_QUEUE = "mail.drain";
const DRAIN_SLICE_MS = 60_000;
const SWEEP_EVERY_MS = 3_000;

type DrainJob = { mailboxId: string };

const holder = globalThis as typeof globalThis & {
  __mailwardenDrain?: {
    draining: Map<string, { isRequested: boolean }>;
    sweeper?: NodeJS.Timeout;
    sweeping?: Promise<void>;
  };
};
holder.__mailwardenDrain ??= { draining: new Map() };
const drainState = holder.__mailwardenDrain;

// A burst of enqueues for one mailbox needs one wake-up: at most one a second from this process
// (a waiting job is enough, and the sweep catches anything a skipped wake-up would have).
const WAKE_EVERY_MS = 1_000;
const wokenAt = new Map<string, number>();

/** Wakes the mailbox's worker (in whichever process fetches the job). */
export async function wakeMailbox(mailboxId: string, { force = false } = {}): Promise<void> {
  const now = Date.now();
  if (!force && now - (wokenAt.get(mailboxId) ?? 0) < WAKE_EVERY_MS) return;
  wokenAt.set(mailboxId, now);
  if (wokenAt.size > 10_000) wokenAt.clear();
  await enqueue<DrainJob>(
    DRAIN_QUEUE,
    { mailboxId },
    {
      singletonKey: mailboxId,
      queue: { policy: "short", expireInSeconds: 300, retryLimit: 1, retryDelay: 5 },
    },
  );
}

/**
 * Stores a message that passed every check of the chokepoint as `queued` (one row, body sealed
 * under the row's id) and wakes its mailbox's worker. Null when another request holds the
 * Idempotency-Key.
 */
export async function queueMessage(
  db: Database,
  input: {
    ctx: SenderContext;
    mailbox: Mailbox;
    sender: MessageSender;
    request: SendRequest;
    requestHash: string;
    idempotencyKey: string | null;
  },
): Promise<{ id: string } | null> {
  const { ctx, mailbox, request } = input;
  const id = randomUUID();
  const bodySealed = encryptField(keyring(), JSON.stringify(request), { ...BODY_FIELD, rowId: id });
  // The row and its event are one statement: a row without its event (the audit write failed,
  // the caller was told 500 "may not have been sent") would still be sent later, and a retry
  // without an Idempotency-Key would send it twice.
  const { isWritten } = await writeAuditEventWithChange(
    db,
    {
      orgId: ctx.orgId,
      actor: ctx.actor,
      action: "message.queued",
      target: { type: "message", id },
      outcome: "success",
      request: ctx.request,
      metadata: {
        mailboxId: mailbox.id,
        provider: mailbox.provider,
        recipientCount: request.to.length + request.cc.length + request.bcc.length,
      },
    },
    {
      name: "message_queued",
      change: queuedMessageInsert({
        id,
        orgId: ctx.orgId,
        mailboxId: mailbox.id,
        sender: input.sender,
        recipients: { to: request.to, cc: request.cc, bcc: request.bcc },
        subject: request.subject,
        idempotencyKey: input.idempotencyKey,
        requestHash: input.requestHash,
        bodySealed,
        deadlineAt: new Date(Date.now() + env().QUEUE_DEADLINE_HOURS * 3_600_000),
      }),
    },
  );
  if (!isWritten) return null;
  // A lost wake-up is found by the next sweep.
  await wakeMailbox(mailbox.id).catch(() => {});
  return { id };
}

/** Cancels a queued or retrying message (not one being sent); audited. */
export async function cancelMessage(
  ctx: CallContext,
  messageId: string,
): Promise<{ ok: true } | { ok: false; cause: string }> {
  const db = await getDb();
  const cancelled = await cancelQueuedMessage({
    db,
    orgId: ctx.orgId,
    messageId,
    cause: `Cancelled by ${ctx.actor.label ?? "a member"} before it was sent.`,
  });
  await writeAuditEvent(db, {
    orgId: ctx.orgId,
    actor: ctx.actor,
    action: "message.cancelled",
    target: { type: "message", id: messageId },
    outcome: cancelled ? "success" : "failure",
    request: ctx.request,
    metadata: cancelled ? { mailboxId: cancelled.mailboxId } : { reason: "not_waiting" },
  });
  return cancelled
    ? { ok: true }
    : { ok: false, cause: "This message is no longer waiting: it is being sent or has finished." };
}

/** Runs the mailbox's attempts one after another for up to a slice. */
export async function drainMailbox(mailboxId: string, sliceMs = DRAIN_SLICE_MS): Promise<void> {
  const running = drainState.draining.get(mailboxId);
  if (running) {
    // This process already drains it: ask that loop to look once more before it stops.
    running.isRequested = true;
    return;
  }
  const self = { isRequested: false };
  drainState.draining.set(mailboxId, self);
  const stopAt = Date.now() + sliceMs;
  try {
    for (;;) {
      if (Date.now() > stopAt) {
        await wakeMailbox(mailboxId, { force: true });
        return;
      }
      const result = await attemptNextQueued(mailboxId);
      if (result.kind === "attempted") continue;
      // Idle or held: the sweep wakes the mailbox when its next message is due.
      if (!self.isRequested) return;
      self.isRequested = false;
    }
  } finally {
    drainState.draining.delete(mailboxId);
  }
}

async function sweep(): Promise<void> {
  const db = await getDb();
  await settleInterruptedAttempts();
  for (const mailboxId of await mailboxesWithDueMessages({ db })) {
    if (!drainState.draining.has(mailboxId)) await wakeMailbox(mailboxId);
  }
}

/** One sweep now (tests, and the interval below). */
export function sweepQueuedMessages(): Promise<void> {
  drainState.sweeping ??= sweep().finally(() => {
    drainState.sweeping = undefined;
  });
  return drainState.sweeping;
}

/** Registers the mailbox workers and starts the sweep in this process (instrumentation.ts). */
export async function startMessageWorkers(): Promise<void> {
  await registerWorker<DrainJob>(DRAIN_QUEUE, (data) => drainMailbox(data.mailboxId), {
    concurrency: env().QUEUE_CONCURRENCY,
    queue: { policy: "short", expireInSeconds: 300, retryLimit: 1, retryDelay: 5 },
  });
  if (drainState.sweeper) return;
  drainState.sweeper = setInterval(() => {
    sweepQueuedMessages().catch((error: unknown) => {
      console.error(`[mailwarden] queue sweep: ${(error as Error).message}`);
    });
  }, SWEEP_EVERY_MS);
  drainState.sweeper.unref();
}

/** Tests and shutdown: stops the sweep (the workers stop with the queue). */
export function stopMessageSweep(): void {
  if (drainState.sweeper) clearInterval(drainState.sweeper);
  drainState.sweeper = undefined;
}
