import "server-only";
import { randomUUID } from "node:crypto";
import { type Database, getDb } from "@/db";
import { getApiKeyForOrg } from "@/db/queries/api-keys";
import { findMailboxByIdOrAddress } from "@/db/queries/mailboxes";
import { finishMessage } from "@/db/queries/messages";
import {
  claimQueuedMessage,
  type DueMessage,
  holdMailboxMessages,
  holdQueuedMessage,
  type ReservedMessage,
  reserveNextDueMessage,
  takeLapsedClaims,
} from "@/db/queries/queued-messages";
import type { SenderContext } from "@/lib/auth/context";
import { DecryptionError, decryptField } from "@/lib/crypto";
import { keyring } from "@/lib/crypto/runtime";
import { demoInboxMessageIds } from "@/lib/demo/inbox";
import { env } from "@/lib/env";
import { isSendingPaused, sendingPauseOf } from "@/lib/incidents/switches";
import { checkMailboxLimits, checkToken, lookupMailbox, stoppedMeanwhile } from "./checks";
import {
  applyToMailbox,
  type Delivery,
  deliver,
  type Mailbox,
  recordDelivery,
  recordUse,
} from "./delivery";
import { refusalToSend } from "./mailbox-state";
import type { SendRequest } from "./message";
import { toNodemailerFields } from "./nodemailer-fields";
import { isRefusal, isSmtpFailure, type RefusalOutcome } from "./outcomes";
import { awaitPaceSlot } from "./pace";

// The send chokepoint for queued messages (ARCHITECTURE.md, "Queued messages"); with send.ts the
// only caller of delivery.ts. One attempt takes the mailbox's pace slot, then runs every check
// of a synchronous send again (switches, the key still valid and allowed for the mailbox, the
// mailbox's state, its limits, the token), then claims the row — status `sending`, a new
// attempt id, a lease and the Message-ID, committed before any connection — and only then
// speaks SMTP. A refusal that may pass later (paused, limited) holds the message; one that
// cannot (key revoked, mailbox needs reconnecting) is its final outcome.

export const BODY_FIELD = { table: "messages", column: "body_sealed" } as const;

/** How often a held message is looked at again while sending is paused. */
const PAUSE_RECHECK_MS = 15_000;
const MAX_RETRY_MS = 30 * 60_000;

export type AttemptResult =
  | { kind: "idle" }
  | { kind: "held"; until: Date }
  | { kind: "attempted"; messageId: string };

// Where the demo SMTP server keeps what it accepted: the app's data folder (scripts/run.ts starts
// it there). Test seam: a test's own demo server keeps its inbox in a temporary folder.
const inboxHolder = globalThis as typeof globalThis & { __mailwardenDemoInboxDataDir?: string };
export function useDemoInboxDataDir(dataDir: string | undefined): void {
  inboxHolder.__mailwardenDemoInboxDataDir = dataDir;
}
export const demoInboxDataDir = () => inboxHolder.__mailwardenDemoInboxDataDir ?? env().dataDir;

export const INTERRUPTED_CAUSE =
  "Interrupted during delivery; not resent to avoid a duplicate — check Sent Items.";

/**
 * The sender of a queued message as the chokepoint's checks and the audit log see it. A key
 * deleted since (its creator's data was erased) is still the sender: the mailbox lookup finds
 * no such key and the message gets a revoked key's final outcome, never the system's rights.
 */
async function senderContext(db: Database, row: DueMessage | QueuedRow): Promise<SenderContext> {
  if (row.senderType === "api_key") {
    const key = await getApiKeyForOrg({ db, orgId: row.orgId, keyId: row.senderId });
    return {
      orgId: row.orgId,
      actor: { type: "api_key", id: row.senderId, label: key?.name ?? "deleted API key" },
      role: null,
      request: { ip: null, userAgent: null },
      allowedMailboxIds: key ? (key.allowedMailboxIds ?? null) : [],
    };
  }
  return {
    orgId: row.orgId,
    actor: { type: "system", label: "message queue" },
    role: null,
    request: { ip: null, userAgent: null },
    allowedMailboxIds: null,
  };
}

/** What a synchronous send was for, by who sent it (lib/mail/checks.ts, senderOf). */
const PURPOSE_OF_SENDER: Record<string, "api" | "dashboard_test" | "notification"> = {
  api_key: "api",
  user: "dashboard_test",
  system: "notification",
};

type QueuedRow = { id: string; orgId: string; senderType: string; senderId: string };

function retryDelayMs(attempts: number): number {
  const base = env().QUEUE_RETRY_BASE_SECONDS * 1000;
  const delay = Math.min(MAX_RETRY_MS, base * 2 ** Math.max(0, attempts - 1));
  return Math.round(delay * (0.9 + Math.random() * 0.2));
}

const later = (ms: number) => new Date(Date.now() + ms);

/**
 * The final outcome through the synchronous path's recordDelivery. Rows are queued ones but for
 * an interrupted synchronous send the sweep settles (`isQueued` false: its purpose is its
 * sender's, and it keeps no cause of its own). `claimId` is the attempt's id (its claim, or its
 * reservation for a refusal before the claim): only a row still this attempt's is finished, so
 * a stale worker never overwrites another's outcome (nor turns a cancel into a failure).
 */
async function finish(
  db: Database,
  ctx: SenderContext,
  mailbox: Mailbox,
  row: { id: string; recipientCount: number; senderType?: string; isQueued?: boolean },
  delivery: Delivery,
  claimId: string,
) {
  const isQueued = row.isQueued ?? true;
  await recordDelivery(db, {
    ctx,
    purpose: isQueued ? "api" : (PURPOSE_OF_SENDER[row.senderType ?? ""] ?? "api"),
    mailbox,
    messageId: row.id,
    claimId,
    recipientCount: row.recipientCount,
    delivery,
    isQueued,
  });
}

/** A refusal before the claim: the message waits (paused, limited) or has its final outcome. */
async function judgeRefusal(
  db: Database,
  ctx: SenderContext,
  mailbox: Mailbox,
  row: ReservedMessage,
  refusal: RefusalOutcome,
): Promise<AttemptResult> {
  let until: Date | null = null;
  if (refusal.kind === "paused") until = later(PAUSE_RECHECK_MS);
  if (refusal.kind === "rate_limited" || refusal.kind === "unavailable") {
    until = later(Math.max(1, refusal.retryAfterSeconds) * 1000);
  }
  if (refusal.kind === "provider_failed") until = later(retryDelayMs(row.attempts + 1));
  const cause =
    ("cause" in refusal ? refusal.cause : null) ??
    (refusal.kind === "rate_limited"
      ? `The mailbox's rate limit (${refusal.limit}) is reached; it is sent once the limit allows.`
      : null);
  if (until && refusal.kind !== "provider_failed") {
    // A pause or a limit holds every waiting message of the mailbox, not only this one.
    const { attemptId } = row;
    await holdMailboxMessages({ db, mailboxId: mailbox.id, attemptId, until, lastError: cause });
    return { kind: "held", until };
  }
  if (until && !pastDeadline(row, until)) {
    await holdQueuedMessage({
      db,
      messageId: row.id,
      claimId: row.attemptId,
      until,
      status: row.status === "retrying" ? "retrying" : "queued",
      lastError: cause,
    });
    return { kind: "held", until };
  }
  await finish(db, ctx, mailbox, row, { ok: false, failure: refusal }, row.attemptId);
  return { kind: "attempted", messageId: row.id };
}

// One queued attempt waits for a free connection and retries a transient reply inside itself
// only briefly: the queue's own backoff (QUEUE_RETRY_BASE_SECONDS) takes over after that.
const ATTEMPT_MS = 5_000;

function attemptDeadline(row: { deadlineAt: Date | null }): number {
  const soon = Date.now() + ATTEMPT_MS;
  return row.deadlineAt === null ? soon : Math.min(soon, row.deadlineAt.getTime());
}

function deadlineFailure(row: DueMessage): RefusalOutcome {
  const waited = row.lastError ? ` It waited because: ${row.lastError}` : "";
  return {
    kind: "provider_failed",
    id: row.id,
    failure: "transient",
    code: "deadline_passed",
    smtpResponse: null,
    cause: `Not sent: its deadline passed while it waited, and a message is never sent late.${waited}`,
    retryAfterSeconds: null,
  };
}

function pastDeadline(row: { deadlineAt: Date | null }, until: Date): boolean {
  return row.deadlineAt !== null && until.getTime() > row.deadlineAt.getTime();
}

/**
 * One attempt at the mailbox's next due message, reserved for it before the pace wait and the
 * limit charges (another drainer of the mailbox takes the next one): idle when none is due.
 */
export async function attemptNextQueued(mailboxId: string): Promise<AttemptResult> {
  const db = await getDb();
  const attemptId = randomUUID();
  const row = await reserveNextDueMessage({ db, mailboxId, attemptId });
  if (!row) return { kind: "idle" };
  const ctx = await senderContext(db, row);
  // The provider's pace first; what the mailbox says is judged after the wait.
  const found = await findMailboxByIdOrAddress({ db, orgId: row.orgId, mailbox: mailboxId });
  if (!found) return { kind: "idle" };
  // Past its deadline a message is never sent, whatever held it: a backlog held by a pause or a
  // limit and released days later would otherwise go out stale (one-time codes, resets).
  if (row.deadlineAt !== null && row.deadlineAt.getTime() <= Date.now()) {
    await finish(db, ctx, found, row, { ok: false, failure: deadlineFailure(row) }, attemptId);
    return { kind: "attempted", messageId: row.id };
  }
  await awaitPaceSlot(db, found);

  // Every check again, after the wait, read anew by one statement (the mailbox, the key's
  // revocation, the pause switch): a switch pulled meanwhile still stops this message.
  const mailbox = await lookupMailbox(db, ctx, mailboxId);
  const pause = isRefusal(mailbox)
    ? await isSendingPaused({ db, orgId: row.orgId })
    : sendingPauseOf(mailbox.sendingPause);
  if (pause.isPaused) {
    const cause = `Sending is paused by an incident switch: ${pause.reason}`;
    const held = isRefusal(mailbox) ? found : mailbox;
    return judgeRefusal(db, ctx, held, row, { kind: "paused", scope: pause.scope, cause });
  }
  if (isRefusal(mailbox)) {
    const refusal: RefusalOutcome =
      mailbox.kind === "unauthorized"
        ? {
            kind: "forbidden",
            cause:
              "The API key that queued this message was revoked or expired before it was sent; nothing was sent.",
          }
        : mailbox;
    return judgeRefusal(db, ctx, found, row, refusal);
  }
  // A mailbox at its provider's limit (limited_until) is a rate_limited refusal: held, not failed.
  const unusable = refusalToSend(mailbox);
  if (unusable) return judgeRefusal(db, ctx, mailbox, row, unusable);
  const limited = await checkMailboxLimits(mailbox, row.recipientCount);
  if (limited) return judgeRefusal(db, ctx, mailbox, row, limited);
  const token = await checkToken(mailbox);
  if (isRefusal(token)) return judgeRefusal(db, ctx, mailbox, row, token);

  // The body is opened before the claim: one that no key can open (its key was dropped from
  // the keyring) fails now, rather than after a claim it could never complete.
  let request: SendRequest;
  try {
    request = JSON.parse(
      decryptField(keyring(), row.bodySealed ?? "", { ...BODY_FIELD, rowId: row.id }),
    ) as SendRequest;
  } catch (error) {
    if (!(error instanceof DecryptionError)) throw error;
    return judgeRefusal(db, ctx, mailbox, row, {
      kind: "conflict",
      mailboxStatus: null,
      cause:
        "The queued message could not be decrypted (its encryption key is no longer in the keyring); nothing was sent.",
    });
  }

  const domain = mailbox.address.split("@")[1] ?? "mailwarden.invalid";
  const claimed = await claimQueuedMessage({
    db,
    messageId: row.id,
    attemptId,
    leaseSeconds: env().QUEUE_SEND_LEASE_SECONDS,
    providerMessageId: `<${randomUUID()}@${domain}>`,
  });
  // Cancelled, put off, or reserved by another attempt after this one's reservation lapsed.
  if (!claimed?.bodySealed) return { kind: "attempted", messageId: row.id };

  try {
    const fields = { ...toNodemailerFields(request), messageId: claimed.providerMessageId };
    const delivery = await deliver(mailbox, token.expiresAt, fields, attemptDeadline(row), () =>
      stoppedMeanwhile(db, ctx.orgId, mailbox.id),
    );
    if (delivery.ok) {
      await finish(db, ctx, mailbox, row, delivery, attemptId);
      recordUse(mailbox.id);
      return { kind: "attempted", messageId: row.id };
    }
    const failure = delivery.failure;
    if (isSmtpFailure(failure)) await applyToMailbox(mailbox, failure);
    const retryAt =
      "retryAt" in failure && failure.retryAt instanceof Date ? failure.retryAt : null;
    // A pause turned on while this attempt waited to retry holds it like any other pause.
    const isPaused = failure.kind === "paused";
    const isTransient =
      isPaused ||
      retryAt !== null ||
      failure.kind === "transient" ||
      failure.kind === "provider_failed";
    const until = retryAt ?? later(isPaused ? PAUSE_RECHECK_MS : retryDelayMs(claimed.attempts));
    if (isTransient && !pastDeadline(row, until)) {
      await holdQueuedMessage({
        db,
        messageId: row.id,
        claimId: attemptId,
        until,
        status: "retrying",
        lastError:
          "cause" in failure && failure.cause
            ? failure.cause.replace("<address>", mailbox.address)
            : null,
      });
      return { kind: "attempted", messageId: row.id };
    }
    await finish(db, ctx, mailbox, row, delivery, attemptId);
    return { kind: "attempted", messageId: row.id };
  } catch (error) {
    // Before or after the conversation, unknown: the lease runs out and the attempt is
    // reconciled like an interrupted one, never blindly resent.
    console.error(`[mailwarden] queued attempt failed: ${(error as Error)?.name ?? "error"}`);
    return { kind: "attempted", messageId: row.id };
  }
}

/**
 * Attempts whose process died (their lease lapsed while `sending`). A demo mailbox is
 * reconciled against the demo server's record of accepted Message-IDs: sent when it is there,
 * sent again (same Message-ID) when not. For Gmail and Microsoft nobody can tell whether the
 * provider accepted it, so it fails with INTERRUPTED_CAUSE rather than risk a duplicate.
 */
export async function settleInterruptedAttempts(): Promise<number> {
  const db = await getDb();
  const claimId = randomUUID();
  const rows = await takeLapsedClaims({
    db,
    claimId,
    leaseSeconds: env().QUEUE_SEND_LEASE_SECONDS,
  });
  const found = await Promise.all(
    rows.map(async (row) => ({
      row,
      mailbox: row.mailboxId
        ? await findMailboxByIdOrAddress({ db, orgId: row.orgId, mailbox: row.mailboxId })
        : null,
    })),
  );
  // One read of the demo server's record for every demo attempt of this sweep.
  // A synchronous send's row (no body kept) can only fail as interrupted.
  const isDemoQueued = (row: (typeof rows)[number], mailbox: Mailbox | null) =>
    mailbox?.provider === "demo" && row.isQueued && row.providerMessageId !== null;
  const demoIds = found.flatMap(({ row, mailbox }) =>
    isDemoQueued(row, mailbox) && row.providerMessageId ? [row.providerMessageId] : [],
  );
  const accepted =
    demoIds.length > 0 ? await demoInboxMessageIds(demoInboxDataDir(), demoIds) : new Set();
  for (const { row, mailbox } of found) {
    const ctx = await senderContext(db, row);
    if (mailbox && isDemoQueued(row, mailbox) && row.providerMessageId) {
      if (accepted.has(row.providerMessageId)) {
        const smtpResponse =
          "250 Accepted before the attempt was interrupted (demo server's record)";
        const delivery = { ok: true as const, messageId: row.providerMessageId, smtpResponse };
        await finish(db, ctx, mailbox, row, delivery, claimId);
      } else {
        await holdQueuedMessage({
          db,
          messageId: row.id,
          claimId,
          until: new Date(),
          status: "retrying",
          lastError:
            "An attempt was interrupted before the demo server accepted the message; it is sent again with the same Message-ID.",
        });
      }
      continue;
    }
    const failure: RefusalOutcome = {
      kind: "provider_failed",
      id: row.id,
      failure: "transient",
      code: "interrupted",
      smtpResponse: null,
      cause: INTERRUPTED_CAUSE,
      retryAfterSeconds: null,
    };
    if (mailbox) await finish(db, ctx, mailbox, row, { ok: false, failure }, claimId);
    else {
      await finishMessage({
        db,
        orgId: row.orgId,
        messageId: row.id,
        claimId,
        status: "failed",
        smtpResponse: null,
        providerMessageId: row.providerMessageId,
        errorCode: "interrupted",
        lastError: INTERRUPTED_CAUSE,
      });
    }
  }
  return rows.length;
}
