import "server-only";
import { randomUUID } from "node:crypto";
import { getDb } from "@/db";
import {
  claimConnectionSlot,
  releaseAllConnectionSlots,
  releaseConnectionSlot,
  renewConnectionSlots,
} from "@/db/queries/connection-slots";

// Connection caps across processes (ARCHITECTURE.md, "Connection caps"): a process may hold an
// SMTP connection for a mailbox only while it holds a lease row for one of the mailbox's
// `maxConnections` slots. A lease is claimed when a connection opens (one statement), renewed
// for every lease of the process at once every RENEW_EVERY_MS (one statement), and released
// when the connection closes (one statement): nothing per message. A process that dies leaves
// its rows behind; they are free again when their lease runs out.

export const LEASE_MS = 60_000;
const RENEW_EVERY_MS = 15_000;
/** A connection takes a new message only while its lease runs at least this much longer. */
const USABLE_MARGIN_MS = 30_000;
/** Renewals failed (database down): the connection closes this long before its lease ends. */
const CLOSE_MARGIN_MS = 5_000;

export type Lease = {
  mailboxId: string;
  slot: number;
  /** Local clock, taken before the claim was sent: never later than the row's lease_until. */
  expiresAt: number;
  /** Called when the lease is lost or about to run out: the connection must close now. */
  onLost: () => void;
  released: boolean;
};

type State = {
  holder: string;
  leases: Set<Lease>;
  renewer?: NodeJS.Timeout;
  renewing?: Promise<void>;
};

// Kept on globalThis so `next dev` module reloads keep one holder id for the process.
const slotsHolder = globalThis as typeof globalThis & { __mailwardenSlots?: State };
slotsHolder.__mailwardenSlots ??= { holder: `${process.pid}:${randomUUID()}`, leases: new Set() };
const state = slotsHolder.__mailwardenSlots;

/** This process's holder id, as written in the lease rows. */
export function slotHolder(): string {
  return state.holder;
}

/** One free slot of the mailbox for this process, or null while all `max` are leased. */
export async function claimSlot(
  mailboxId: string,
  max: number,
  onLost: () => void,
): Promise<Lease | null> {
  const startedAt = Date.now();
  const slot = await claimConnectionSlot({
    db: await getDb(),
    mailboxId,
    max,
    holder: state.holder,
    leaseMs: LEASE_MS,
  });
  if (slot === null) return null;
  const lease: Lease = {
    mailboxId,
    slot,
    expiresAt: startedAt + LEASE_MS,
    onLost,
    released: false,
  };
  state.leases.add(lease);
  startRenewer();
  return lease;
}

export function isLeaseUsable(lease: Lease, now = Date.now()): boolean {
  return !lease.released && lease.expiresAt - now > USABLE_MARGIN_MS;
}

/** After the connection closed. A failed delete only means the row lives out its lease. */
export async function releaseSlot(lease: Lease): Promise<void> {
  if (lease.released) return;
  lease.released = true;
  state.leases.delete(lease);
  if (state.leases.size === 0) stopRenewer();
  try {
    await releaseConnectionSlot({
      db: await getDb(),
      mailboxId: lease.mailboxId,
      slot: lease.slot,
      holder: state.holder,
    });
  } catch {
    // The row lives out its lease.
  }
}

/** One statement for every lease this process holds; a lease it no longer has is closed. */
export async function renewLeases(): Promise<void> {
  if (state.renewing) return state.renewing;
  state.renewing = (async () => {
    const startedAt = Date.now();
    try {
      if (state.leases.size > 0) {
        const held = await renewConnectionSlots({
          db: await getDb(),
          holder: state.holder,
          leaseMs: LEASE_MS,
        });
        const still = new Set(held.map((h) => `${h.mailboxId}/${h.slot}`));
        for (const lease of [...state.leases]) {
          if (still.has(`${lease.mailboxId}/${lease.slot}`)) lease.expiresAt = startedAt + LEASE_MS;
          else loseLease(lease);
        }
      }
    } catch {
      // The database did not answer: the leases run on, and close before they run out below.
    }
    const now = Date.now();
    for (const lease of [...state.leases]) {
      if (lease.expiresAt - now < CLOSE_MARGIN_MS) loseLease(lease);
    }
  })().finally(() => {
    state.renewing = undefined;
  });
  return state.renewing;
}

function loseLease(lease: Lease): void {
  state.leases.delete(lease);
  lease.onLost();
}

function startRenewer(): void {
  if (state.renewer) return;
  state.renewer = setInterval(() => void renewLeases(), RENEW_EVERY_MS);
  state.renewer.unref();
}

function stopRenewer(): void {
  if (state.renewer) clearInterval(state.renewer);
  state.renewer = undefined;
}

/** Shutdown: every lease of this process, after its connections were closed. */
export async function releaseAllSlots(): Promise<void> {
  for (const lease of state.leases) lease.released = true;
  state.leases.clear();
  stopRenewer();
  try {
    await releaseAllConnectionSlots({ db: await getDb(), holder: state.holder });
  } catch {
    // The rows live out their leases.
  }
}
