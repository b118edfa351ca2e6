import "server-only";
import type { SentMessageInfo, Transporter } from "nodemailer";
import type Mail from "nodemailer/lib/mailer";
import type MailMessage from "nodemailer/lib/mailer/mail-message";
import { claimSlot, isLeaseUsable, type Lease, releaseSlot } from "./connection-slots";
import { DELIVERY_UNCERTAIN } from "./smtp-replies";

// The connections of one mailbox in this process, each behind a lease (lib/mail/connection-slots.ts):
// one single-connection nodemailer pool per lease, so the process never holds more connections
// than leases. A message takes an idle leased connection; without one it claims a lease while
// fewer than the provider's cap are held here, else it waits for a connection of this process
// to come free or polls for a lease freed by another process, until its deadline.

/**
 * An idle connection gives its lease back after this, so other processes can have it. Longer
 * than the 2 s between messages of a mailbox paced at Microsoft's 30 a minute, so a paced
 * mailbox keeps its connection.
 */
const IDLE_RELEASE_MS = 5_000;
/** A busy connection is replaced after this long, giving waiting processes a turn at its lease. */
const MAX_HOLD_MS = 30_000;
const POLL_MIN_MS = 25;
const POLL_MAX_MS = 400;

type Slot = {
  lease: Lease;
  /** Created on first use; null again after a probe used the lease. */
  transporter: Transporter<SentMessageInfo> | null;
  busy: boolean;
  closing: boolean;
  heldSince: number;
  idleTimer?: NodeJS.Timeout;
};

/** Raised when no connection came free before the deadline: transient, nothing was sent. */
export class ConnectionSlotsBusyError extends Error {
  readonly code = "ESLOTSBUSY";
  constructor(readonly maxConnections: number) {
    super(`All ${maxConnections} SMTP connections of this mailbox stayed busy until the deadline`);
    this.name = "ConnectionSlotsBusyError";
  }
}

/** Raised to a waiter of connections that were replaced (new grant) or closed: try again. */
export class ConnectionsClosedError extends Error {
  readonly code = "ECONNECTION";
  constructor() {
    super("The mailbox's connections were closed while this message waited; try again");
    this.name = "ConnectionsClosedError";
  }
}

/**
 * Raised when a connection failed without a reply after the message's last byte went out: the
 * provider may have accepted it, so it must not be sent again (ARCHITECTURE.md, "Never twice").
 */
export class DeliveryUncertainError extends Error {
  readonly code = DELIVERY_UNCERTAIN;
  constructor(
    readonly original: unknown,
    /** The Message-ID header the message carried, to look for in Sent Items. */
    readonly messageId: string | null,
  ) {
    super("The connection failed after the message was handed over, before the reply");
    this.name = "DeliveryUncertainError";
  }
}

// The mail option through which the transport's stream plugin reports the end of the body.
const BODY_PROGRESS = "mailwardenBodyProgress";
type BodyProgress = { handedOver: boolean; messageId: string | null };

/**
 * A nodemailer `stream` plugin: marks the message's progress once its whole body has been read
 * into DATA (what is left is the final dot and the reply). Installed on every pooled transporter.
 */
export function trackBodyProgress(mail: MailMessage, done: (error?: Error | null) => void): void {
  const progress = (mail.data as Record<string, unknown>)[BODY_PROGRESS] as
    | BodyProgress
    | undefined;
  if (progress) {
    progress.messageId = mail.message.messageId();
    mail.message.processFunc((body) =>
      body.once("end", () => {
        progress.handedOver = true;
      }),
    );
  }
  done();
}

/** Did the server answer (an SMTP reply code), or did the connection fail without one? */
function hasReply(error: unknown): boolean {
  const e = error as { responseCode?: unknown } | null;
  return typeof e?.responseCode === "number";
}

/** 432 4.3.2: the provider counts more connections than the leases say (another client). */
function isConcurrencyRefusal(error: unknown): boolean {
  const e = error as { responseCode?: unknown; response?: unknown } | null;
  return e?.responseCode === 432 || (typeof e?.response === "string" && /^432\b/.test(e.response));
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export class MailboxConnections {
  private readonly slots: Slot[] = [];
  private claiming = 0;
  private wakers: Array<() => void> = [];
  private yieldUntil = 0;
  private closed = false;

  constructor(
    readonly mailboxId: string,
    readonly maxConnections: number,
    private readonly createTransporter: () => Transporter<SentMessageInfo>,
  ) {}

  /** Connections this process holds for the mailbox (tests, the sweeper). */
  get size(): number {
    return this.slots.length;
  }

  /** One message over a leased connection; waits for one until `deadlineAt` (epoch ms). */
  async sendMail(mail: Mail.Options, deadlineAt: number): Promise<SentMessageInfo> {
    const slot = await this.acquire(deadlineAt);
    slot.transporter ??= this.createTransporter();
    const progress: BodyProgress = { handedOver: false, messageId: null };
    try {
      return await slot.transporter.sendMail({
        ...mail,
        [BODY_PROGRESS]: progress,
      } as Mail.Options);
    } catch (error) {
      // The provider refused a connection our leases allowed: give this lease back, so the
      // connections of this mailbox shrink to what the provider accepts, and let the caller retry.
      if (isConcurrencyRefusal(error)) slot.closing = true;
      throw progress.handedOver && !hasReply(error)
        ? new DeliveryUncertainError(error, progress.messageId)
        : error;
    } finally {
      this.release(slot);
    }
  }

  /**
   * Runs `fn` (a connection test on its own one-off connection) while holding a lease whose
   * pooled connection is closed first, so the test is one of the mailbox's counted connections.
   */
  async withLease<T>(deadlineAt: number, fn: () => Promise<T>): Promise<T> {
    const slot = await this.acquire(deadlineAt);
    slot.transporter?.close();
    slot.transporter = null;
    try {
      return await fn();
    } finally {
      this.release(slot);
    }
  }

  private async acquire(deadlineAt: number): Promise<Slot> {
    let pollMs = POLL_MIN_MS;
    for (;;) {
      if (this.closed) throw new ConnectionsClosedError();
      const idle = this.slots.find((s) => !s.busy && !s.closing && isLeaseUsable(s.lease));
      if (idle) return this.take(idle);
      if (
        this.slots.length + this.claiming < this.maxConnections &&
        Date.now() >= this.yieldUntil
      ) {
        const slot = await this.claim();
        if (slot) return slot;
      }
      const remaining = deadlineAt - Date.now();
      if (remaining <= 0) throw new ConnectionSlotsBusyError(this.maxConnections);
      // Woken early when a connection of this process comes free; else polls for a lease.
      await this.waitForRelease(Math.min(remaining, pollMs * (0.5 + Math.random())));
      pollMs = Math.min(pollMs * 2, POLL_MAX_MS);
    }
  }

  private take(slot: Slot): Slot {
    clearTimeout(slot.idleTimer);
    slot.busy = true;
    return slot;
  }

  private async claim(): Promise<Slot | null> {
    this.claiming++;
    let lease: Lease | null;
    let slot: Slot | undefined;
    try {
      lease = await claimSlot(this.mailboxId, this.maxConnections, () => this.lose(slot));
    } finally {
      this.claiming--;
    }
    if (!lease) return null;
    slot = {
      lease,
      transporter: null,
      busy: true,
      closing: false,
      heldSince: Date.now(),
    };
    if (this.closed) {
      await releaseSlot(lease);
      throw new ConnectionsClosedError();
    }
    this.slots.push(slot);
    return slot;
  }

  private waitForRelease(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        this.wakers = this.wakers.filter((w) => w !== wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      this.wakers.push(wake);
    });
  }

  private release(slot: Slot): void {
    slot.busy = false;
    const now = Date.now();
    if (now - slot.heldSince > MAX_HOLD_MS) {
      // Claim the next lease no sooner than a poll of another process would.
      this.yieldUntil = now + POLL_MAX_MS;
      slot.closing = true;
    }
    if (slot.closing || this.closed || !isLeaseUsable(slot.lease)) {
      void this.close(slot);
    } else {
      slot.idleTimer = setTimeout(() => {
        if (!slot.busy) void this.close(slot);
      }, IDLE_RELEASE_MS);
      slot.idleTimer.unref();
    }
    this.wakers[0]?.();
  }

  /**
   * The lease was lost or is about to run out unrenewed: close at once, a message on the wire
   * included (it fails as a dropped connection and is retried on another), since the slot may
   * be another process's a moment later. A message whose body had already gone out fails as
   * uncertain instead (DeliveryUncertainError) and is not resent.
   */
  private lose(slot: Slot | undefined): void {
    if (!slot) return;
    slot.closing = true;
    if (slot.busy) slot.transporter?.close({ force: true });
    else void this.close(slot);
  }

  private async close(slot: Slot): Promise<void> {
    const index = this.slots.indexOf(slot);
    if (index === -1) return;
    this.slots.splice(index, 1);
    clearTimeout(slot.idleTimer);
    slot.transporter?.close();
    slot.transporter = null;
    // The close sends FIN at once; a next holder needs TCP, TLS and EHLO round trips before its
    // AUTH, so the provider has counted this connection out by then.
    await releaseSlot(slot.lease);
    this.wakers[0]?.();
  }

  /**
   * Replaced (a new grant) or dropped (revoke, pause, shutdown): idle connections close now,
   * busy ones after their message; waiters are told to try again.
   */
  async closeAll(): Promise<void> {
    this.closed = true;
    for (const wake of [...this.wakers]) wake();
    const idle = this.slots.filter((s) => !s.busy);
    for (const slot of this.slots) slot.closing = true;
    await Promise.all(idle.map((slot) => this.close(slot)));
  }

  /** Waits until every connection of this object has closed (tests, shutdown). */
  async drained(timeoutMs = 10_000): Promise<void> {
    const until = Date.now() + timeoutMs;
    while (this.slots.length > 0 && Date.now() < until) await sleep(10);
  }
}
