import "server-only";
import { and, eq, sql } from "drizzle-orm";
import type { DbOrTx } from "@/db";
import { smtpConnectionSlots } from "@/db/schema";

// Lease rows of SMTP connections (ARCHITECTURE.md, "Connection caps"). Each function is one
// statement; none runs per message.

function rowsOf<T>(result: unknown): T[] {
  return (result as { rows: T[] }).rows;
}

/**
 * Claims one free slot below `max` for `holder`, or null when every slot is leased. A slot is
 * free when it has no row or its lease ran out. Two claimers that pick the same free slot meet
 * on the primary key: the second one's ON CONFLICT re-reads the row the first committed, finds
 * its lease running and claims nothing (its caller simply tries again).
 */
export async function claimConnectionSlot({
  db,
  mailboxId,
  max,
  holder,
  leaseMs,
}: {
  db: DbOrTx;
  mailboxId: string;
  max: number;
  holder: string;
  leaseMs: number;
}): Promise<number | null> {
  const result = await db.execute(sql`
    with free as (
      select s.slot from generate_series(0, ${max - 1}::int) as s(slot)
      where not exists (
        select 1 from ${smtpConnectionSlots} c
        where c.mailbox_id = ${mailboxId} and c.slot = s.slot and c.lease_until > now()
      )
      order by s.slot
      limit 1
    )
    insert into ${smtpConnectionSlots} (mailbox_id, slot, holder, lease_until)
    select ${mailboxId}, free.slot, ${holder}, now() + make_interval(secs => ${leaseMs / 1000})
    from free
    on conflict (mailbox_id, slot) do update
      set holder = excluded.holder, lease_until = excluded.lease_until
      where ${smtpConnectionSlots}.lease_until <= now()
    returning slot`);
  const [row] = rowsOf<{ slot: number }>(result);
  return row ? Number(row.slot) : null;
}

/** Extends every lease of `holder`; answers the slots it still holds (a lost one must close). */
export async function renewConnectionSlots({
  db,
  holder,
  leaseMs,
}: {
  db: DbOrTx;
  holder: string;
  leaseMs: number;
}): Promise<Array<{ mailboxId: string; slot: number }>> {
  const result = await db.execute(sql`
    update ${smtpConnectionSlots}
    set lease_until = now() + make_interval(secs => ${leaseMs / 1000})
    where holder = ${holder} and lease_until > now()
    returning mailbox_id, slot`);
  return rowsOf<{ mailbox_id: string; slot: number }>(result).map((r) => ({
    mailboxId: r.mailbox_id,
    slot: Number(r.slot),
  }));
}

export async function releaseConnectionSlot({
  db,
  mailboxId,
  slot,
  holder,
}: {
  db: DbOrTx;
  mailboxId: string;
  slot: number;
  holder: string;
}): Promise<void> {
  await db
    .delete(smtpConnectionSlots)
    .where(
      and(
        eq(smtpConnectionSlots.mailboxId, mailboxId),
        eq(smtpConnectionSlots.slot, slot),
        eq(smtpConnectionSlots.holder, holder),
      ),
    );
}

/** Shutdown: every lease of this process. */
export async function releaseAllConnectionSlots({
  db,
  holder,
}: {
  db: DbOrTx;
  holder: string;
}): Promise<void> {
  await db.delete(smtpConnectionSlots).where(eq(smtpConnectionSlots.holder, holder));
}

/** Tests: leases running now for a mailbox. */
export async function countLeasedSlots({
  db,
  mailboxId,
}: {
  db: DbOrTx;
  mailboxId: string;
}): Promise<number> {
  const result = await db.execute(sql`
    select count(*)::int as n from ${smtpConnectionSlots}
    where mailbox_id = ${mailboxId} and lease_until > now()`);
  return Number(rowsOf<{ n: number }>(result)[0]?.n ?? 0);
}
