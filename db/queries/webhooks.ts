import "server-only";
import { and, desc, eq, inArray, lt, or, type Placeholder, type SQL, sql } from "drizzle-orm";
import { type DbOrTx, inTransaction } from "@/db";
import type { StatementPart } from "@/db/prepared";
import { webhookAttempts, webhookDeliveries, webhookEndpoints } from "@/db/schema";

// Webhook endpoints, their deliveries and each delivery's attempts. Every read and change of an
// endpoint or delivery a person asks for is scoped by organisation; the sealed secrets are
// selected only by the functions whose name says "secrets".

const endpointColumns = {
  id: webhookEndpoints.id,
  orgId: webhookEndpoints.orgId,
  url: webhookEndpoints.url,
  description: webhookEndpoints.description,
  events: webhookEndpoints.events,
  enabled: webhookEndpoints.enabled,
  disabledReason: webhookEndpoints.disabledReason,
  previousSecretExpiresAt: webhookEndpoints.previousSecretExpiresAt,
  createdAt: webhookEndpoints.createdAt,
  updatedAt: webhookEndpoints.updatedAt,
};

export type WebhookEndpointSummary = {
  id: string;
  orgId: string;
  url: string;
  description: string;
  events: string[];
  enabled: boolean;
  disabledReason: string | null;
  previousSecretExpiresAt: Date | null;
  createdAt: Date;
  updatedAt: Date;
};

/**
 * Adds an endpoint unless the organisation already has `max`; false when it has. Counted under
 * a lock on the organisation's endpoints (held to the end of the transaction `db` must be), so
 * two saves at once cannot both take the last place.
 */
export async function insertWebhookEndpoint({
  db,
  values,
  max,
}: {
  db: DbOrTx;
  values: typeof webhookEndpoints.$inferInsert & { id: string };
  max: number;
}): Promise<boolean> {
  await db.execute(
    sql`select pg_advisory_xact_lock(hashtextextended(${`webhook-endpoints:${values.orgId}`}, 0))`,
  );
  if ((await countWebhookEndpoints({ db, orgId: values.orgId })) >= max) return false;
  await db.insert(webhookEndpoints).values(values);
  return true;
}

export async function countWebhookEndpoints({ db, orgId }: { db: DbOrTx; orgId: string }) {
  const [row] = await db
    .select({ n: sql<number>`count(*)::int` })
    .from(webhookEndpoints)
    .where(eq(webhookEndpoints.orgId, orgId));
  return row?.n ?? 0;
}

export async function listWebhookEndpoints({
  db,
  orgId,
}: {
  db: DbOrTx;
  orgId: string;
}): Promise<WebhookEndpointSummary[]> {
  return db
    .select(endpointColumns)
    .from(webhookEndpoints)
    .where(eq(webhookEndpoints.orgId, orgId))
    .orderBy(desc(webhookEndpoints.createdAt), desc(webhookEndpoints.id));
}

export async function getWebhookEndpoint({
  db,
  orgId,
  endpointId,
}: {
  db: DbOrTx;
  orgId: string;
  endpointId: string;
}): Promise<WebhookEndpointSummary | null> {
  const [row] = await db
    .select(endpointColumns)
    .from(webhookEndpoints)
    .where(and(eq(webhookEndpoints.orgId, orgId), eq(webhookEndpoints.id, endpointId)));
  return row ?? null;
}

/** The endpoint with its sealed secrets, for signing (no organisation: the delivery names it). */
export async function getWebhookEndpointSecrets({
  db,
  endpointId,
}: {
  db: DbOrTx;
  endpointId: string;
}) {
  const [row] = await db
    .select({
      ...endpointColumns,
      secret: webhookEndpoints.secret,
      previousSecret: webhookEndpoints.previousSecret,
    })
    .from(webhookEndpoints)
    .where(eq(webhookEndpoints.id, endpointId));
  return row ?? null;
}

/** Changes one endpoint of the organisation; the changed row, or null when there is none. */
export async function updateWebhookEndpoint({
  db,
  orgId,
  endpointId,
  set,
}: {
  db: DbOrTx;
  orgId: string;
  endpointId: string;
  set: Partial<typeof webhookEndpoints.$inferInsert>;
}): Promise<WebhookEndpointSummary | null> {
  const [row] = await db
    .update(webhookEndpoints)
    .set({ ...set, updatedAt: new Date() })
    .where(and(eq(webhookEndpoints.orgId, orgId), eq(webhookEndpoints.id, endpointId)))
    .returning(endpointColumns);
  return row ?? null;
}

export async function deleteWebhookEndpoint({
  db,
  orgId,
  endpointId,
}: {
  db: DbOrTx;
  orgId: string;
  endpointId: string;
}): Promise<WebhookEndpointSummary | null> {
  const [row] = await db
    .delete(webhookEndpoints)
    .where(and(eq(webhookEndpoints.orgId, orgId), eq(webhookEndpoints.id, endpointId)))
    .returning(endpointColumns);
  return row ?? null;
}

/**
 * One delivery per enabled endpoint of the organisation subscribed to `type`, as one INSERT …
 * SELECT (it writes nothing when there is none). The id is the Standard Webhooks `webhook-id`.
 * Without RETURNING it can ride in another statement's data-modifying WITH.
 */
export function eventDeliveriesStatement({
  orgId,
  type,
  body,
  deadlineSeconds,
  onlyIf,
  from,
}: {
  orgId: string | Placeholder | SQL;
  type: string | Placeholder | SQL;
  body: string | Placeholder | SQL;
  deadlineSeconds: number | Placeholder | SQL;
  /** A further condition (the change this event reports touched a row). */
  onlyIf?: SQL;
  /** A further source the values come from (the rows of a grouped statement). */
  from?: SQL;
}): SQL {
  return sql`
    insert into webhook_deliveries
      (id, org_id, endpoint_id, event_type, body, next_attempt_at, deadline_at)
    select 'msg_' || replace(gen_random_uuid()::text, '-', ''), e.org_id, e.id, ${type}, ${body},
      now(), now() + make_interval(secs => ${deadlineSeconds})
    from webhook_endpoints e${from ? sql`, ${from}` : sql``}
    where e.org_id = ${orgId} and e.enabled and ${type} = any(e.events)${onlyIf ? sql` and ${onlyIf}` : sql``}`;
}

/** One event's values for its deliveries. */
export type EventDeliveriesInput = {
  orgId: string;
  type: string;
  body: string;
  deadlineSeconds: number;
};

/**
 * The deliveries of one event as a part of another statement (db/prepared.ts), under the
 * placeholder names `webhookOrgId`, `webhookType`, `webhookBody` and `webhookDeadlineSeconds`.
 */
export function eventDeliveriesPart(input: EventDeliveriesInput): StatementPart {
  return {
    build: (_db, onlyIf) =>
      eventDeliveriesStatement({
        orgId: sql.placeholder("webhookOrgId"),
        type: sql.placeholder("webhookType"),
        body: sql.placeholder("webhookBody"),
        deadlineSeconds: sql.placeholder("webhookDeadlineSeconds"),
        ...(onlyIf ? { onlyIf } : {}),
      }),
    params: {
      webhookOrgId: input.orgId,
      webhookType: input.type,
      webhookBody: input.body,
      webhookDeadlineSeconds: input.deadlineSeconds,
    },
  };
}

export async function insertEventDeliveries({
  db,
  ...input
}: Parameters<typeof eventDeliveriesStatement>[0] & { db: DbOrTx }): Promise<string[]> {
  const result = await db.execute(sql`${eventDeliveriesStatement(input)} returning id`);
  return (result as unknown as { rows: { id: string }[] }).rows.map((r) => r.id);
}

export async function insertDelivery({
  db,
  values,
}: {
  db: DbOrTx;
  values: typeof webhookDeliveries.$inferInsert;
}) {
  await db.insert(webhookDeliveries).values(values);
}

export type ClaimedDelivery = {
  id: string;
  orgId: string;
  endpointId: string;
  eventType: string;
  body: string;
  attempts: number;
  deadlineAt: Date;
  waiting: number;
};

/**
 * Takes a due delivery for one attempt: pending and due, or `sending` whose claimant's lease
 * lapsed (it died mid-attempt). One statement, so two workers never both take it. It also says
 * how many of the endpoint's deliveries wait (pending or sending, this one included), counted
 * up to `countWaitingUpTo` only: at most that many entries of the waiting index are read.
 */
export async function claimDelivery({
  db,
  deliveryId,
  leaseSeconds,
  countWaitingUpTo,
}: {
  db: DbOrTx;
  deliveryId: string;
  leaseSeconds: number;
  countWaitingUpTo: number;
}): Promise<ClaimedDelivery | null> {
  const [row] = await db
    .update(webhookDeliveries)
    .set({
      status: "sending",
      attempts: sql`${webhookDeliveries.attempts} + 1`,
      leaseUntil: sql`now() + make_interval(secs => ${leaseSeconds})`,
    })
    .where(
      and(
        eq(webhookDeliveries.id, deliveryId),
        sql`((${webhookDeliveries.status} = 'pending' and ${webhookDeliveries.nextAttemptAt} <= now())
          or (${webhookDeliveries.status} = 'sending' and ${webhookDeliveries.leaseUntil} < now()))`,
      ),
    )
    .returning({
      id: webhookDeliveries.id,
      orgId: webhookDeliveries.orgId,
      endpointId: webhookDeliveries.endpointId,
      eventType: webhookDeliveries.eventType,
      body: webhookDeliveries.body,
      attempts: webhookDeliveries.attempts,
      deadlineAt: webhookDeliveries.deadlineAt,
      // The outer row named in full: drizzle writes a column in RETURNING unqualified, which
      // inside the subquery would be w's own.
      waiting: sql<number>`(select count(*)::int from (select 1 from webhook_deliveries w
        where w.endpoint_id = webhook_deliveries.endpoint_id and w.status in ('pending', 'sending')
        limit ${countWaitingUpTo}) waiting)`,
    });
  return row ?? null;
}

/**
 * Turns the organisation's endpoint off unless it is already, and cancels its pending deliveries
 * and `alsoCancel` (the one being attempted, which is `sending`), in the transaction `db` must
 * be. Those of an endpoint already off are cancelled too: they could only fail. `turnedOff` is
 * the endpoint when this call turned it off, else null (off already, or not the organisation's).
 */
export async function turnOffWebhookEndpoint({
  db,
  orgId,
  endpointId,
  reason,
  alsoCancel,
}: {
  db: DbOrTx;
  orgId: string;
  endpointId: string;
  reason: string;
  alsoCancel?: string;
}): Promise<{ turnedOff: WebhookEndpointSummary | null; cancelled: number }> {
  const [turnedOff] = await db
    .update(webhookEndpoints)
    .set({ enabled: false, disabledReason: reason, updatedAt: new Date() })
    .where(
      and(
        eq(webhookEndpoints.orgId, orgId),
        eq(webhookEndpoints.id, endpointId),
        eq(webhookEndpoints.enabled, true),
      ),
    )
    .returning(endpointColumns);
  const cancelled = await db
    .update(webhookDeliveries)
    .set({ status: "cancelled", nextAttemptAt: null, leaseUntil: null, finishedAt: new Date() })
    .where(
      and(
        eq(webhookDeliveries.orgId, orgId),
        eq(webhookDeliveries.endpointId, endpointId),
        or(
          eq(webhookDeliveries.status, "pending"),
          alsoCancel ? eq(webhookDeliveries.id, alsoCancel) : undefined,
        ),
      ),
    )
    .returning({ id: webhookDeliveries.id });
  return { turnedOff: turnedOff ?? null, cancelled: cancelled.length };
}

/**
 * An attempt's answer and the delivery's next state, together; returns the state written. A
 * retry of a delivery whose endpoint was turned off while it was being attempted is `cancelled`
 * instead (lib/webhooks/breaker.ts): the turn-off cancelled only what was pending. The endpoint
 * row is read FOR SHARE, so a turn-off committing meanwhile is either seen here or, waiting for
 * this transaction, finds the delivery pending and cancels it.
 */
export async function settleAttempt({
  db,
  deliveryId,
  attempt,
  next,
}: {
  db: DbOrTx;
  deliveryId: string;
  attempt: {
    statusCode: number | null;
    error: string | null;
    responseExcerpt: string | null;
    durationMs: number;
    attemptedAt: Date;
  };
  next: { status: "pending"; at: Date } | { status: "delivered" | "failed" };
}): Promise<"pending" | "delivered" | "failed" | "cancelled"> {
  return inTransaction(db, async (tx) => {
    let status: "pending" | "delivered" | "failed" | "cancelled" = next.status;
    if (next.status === "pending") {
      const result = await tx.execute(sql`
        select e.enabled from webhook_endpoints e
        join webhook_deliveries d on d.endpoint_id = e.id
        where d.id = ${deliveryId}
        for share of e`);
      const [row] = (result as unknown as { rows: { enabled: boolean }[] }).rows;
      if (!row?.enabled) status = "cancelled";
    }
    const nextAt = status === "pending" && next.status === "pending" ? next.at : null;
    await tx.insert(webhookAttempts).values({ deliveryId, ...attempt, nextRetryAt: nextAt });
    await tx
      .update(webhookDeliveries)
      .set({
        status,
        nextAttemptAt: nextAt,
        leaseUntil: null,
        finishedAt: status === "pending" ? null : new Date(),
      })
      .where(eq(webhookDeliveries.id, deliveryId));
    return status;
  });
}

export async function markDeliveriesEnqueued({ db, ids }: { db: DbOrTx; ids: string[] }) {
  await db
    .update(webhookDeliveries)
    .set({ enqueuedAt: sql`now()` })
    .where(inArray(webhookDeliveries.id, ids));
}

/**
 * Due deliveries without a live job, marked as enqueued by the same statement (so concurrent
 * sweeps take each once): never enqueued, due and enqueued both more than two minutes ago (the
 * job was lost), or `sending` with a lapsed lease (the attempt's process died). A delivery
 * enqueued within two minutes is left to its job even when long due: in a backlog the oldest
 * due are exactly those still waiting for a worker, and enqueuing them again at every sweep
 * would only lengthen the queue they wait in.
 */
export async function sweepDueDeliveries({
  db,
  limit,
}: {
  db: DbOrTx;
  limit: number;
}): Promise<{ id: string; orgId: string }[]> {
  const result = await db.execute(sql`
    update webhook_deliveries set enqueued_at = now()
    where id in (
      select id from webhook_deliveries
      where (status = 'pending' and next_attempt_at <= now()
          and (enqueued_at is null
            or (next_attempt_at < now() - interval '2 minutes'
              and enqueued_at < now() - interval '2 minutes')))
        or (status = 'sending' and lease_until < now()
          and (enqueued_at is null or enqueued_at < lease_until))
      order by next_attempt_at
      limit ${limit}
      for update skip locked)
    returning id, org_id as "orgId"`);
  return (result as unknown as { rows: { id: string; orgId: string }[] }).rows;
}

/** An endpoint's recent deliveries with every attempt, newest first (scoped by organisation). */
export async function listEndpointDeliveries({
  db,
  orgId,
  endpointId,
  limit = 50,
}: {
  db: DbOrTx;
  orgId: string;
  endpointId: string;
  limit?: number;
}) {
  const deliveries = await db
    .select({
      id: webhookDeliveries.id,
      eventType: webhookDeliveries.eventType,
      status: webhookDeliveries.status,
      attempts: webhookDeliveries.attempts,
      nextAttemptAt: webhookDeliveries.nextAttemptAt,
      deadlineAt: webhookDeliveries.deadlineAt,
      createdAt: webhookDeliveries.createdAt,
      finishedAt: webhookDeliveries.finishedAt,
    })
    .from(webhookDeliveries)
    .where(and(eq(webhookDeliveries.orgId, orgId), eq(webhookDeliveries.endpointId, endpointId)))
    .orderBy(desc(webhookDeliveries.createdAt), desc(webhookDeliveries.id))
    .limit(limit);
  const ids = deliveries.map((d) => d.id);
  const attempts =
    ids.length === 0
      ? []
      : await db
          .select()
          .from(webhookAttempts)
          .where(inArray(webhookAttempts.deliveryId, ids))
          .orderBy(desc(webhookAttempts.attemptedAt));
  return deliveries.map((d) => ({
    ...d,
    attemptList: attempts.filter((a) => a.deliveryId === d.id),
  }));
}

/**
 * Retention: deletes the organisation's finished webhook deliveries (delivered, failed or
 * cancelled) that finished before `before`, with their attempts; pending ones wait for their
 * outcome.
 */
export async function deleteFinishedWebhookDeliveries({
  db,
  orgId,
  before,
}: {
  db: DbOrTx;
  orgId: string;
  before: Date;
}) {
  const rows = await db
    .delete(webhookDeliveries)
    .where(
      and(
        eq(webhookDeliveries.orgId, orgId),
        inArray(webhookDeliveries.status, ["delivered", "failed", "cancelled"]),
        lt(webhookDeliveries.finishedAt, before),
      ),
    )
    .returning({ id: webhookDeliveries.id });
  return rows.length;
}
