import { and, eq, sql } from "drizzle-orm";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { getDb } from "@/db";
import { auditEvents, webhookDeliveries, webhookEndpoints } from "@/db/schema";
import { memberContext } from "@/lib/testing/context";
import { createOwner } from "@/lib/testing/factories";
import { MAX_WAITING_DELIVERIES } from "./breaker";
import { deliverWebhook } from "./deliver";
import { emitWebhookEvent } from "./emit";
import { createEndpoint, getEndpoint, setEndpointEnabled } from "./endpoints";
import { type Receiver, startReceiver } from "./testing/receiver";

// The bound on what one endpoint holds: an endpoint with more than MAX_WAITING_DELIVERIES
// deliveries waiting (pending or mid-attempt) is turned off when one of them is next taken for an
// attempt, and its waiting deliveries end as `cancelled`. Real parts: a local HTTP receiver, the
// real database; the test takes each attempt itself (deliverWebhook), as the queue would.

let receiver: Receiver;

beforeAll(async () => {
  receiver = await startReceiver();
});

afterAll(async () => {
  await receiver?.close();
});

afterEach(() => {
  receiver.received.length = 0;
  receiver.answers.length = 0;
});

async function endpointAtReceiver() {
  const owner = await createOwner("breaker");
  const ctx = memberContext(owner.orgId, owner.user, "owner");
  const { endpoint } = await createEndpoint(ctx, {
    url: receiver.url,
    description: "",
    events: ["message.sent"],
  });
  return { ctx, orgId: owner.orgId, endpointId: endpoint.id };
}

/**
 * `n` deliveries waiting for the endpoint, as a dead receiver leaves them: each tried and due
 * again in an hour (so that no sweep of another test takes them). Returns one of them.
 */
async function waiting(orgId: string, endpointId: string, n: number): Promise<string> {
  const db = await getDb();
  await db.execute(sql`
    insert into webhook_deliveries
      (id, org_id, endpoint_id, event_type, body, attempts, next_attempt_at, enqueued_at, deadline_at)
    select 'msg_' || replace(gen_random_uuid()::text, '-', ''), ${orgId}, ${endpointId},
      'message.sent', '{}', 1, now() + interval '1 hour', now(), now() + interval '72 hours'
    from generate_series(1, ${n})`);
  const [one] = await db
    .select({ id: webhookDeliveries.id })
    .from(webhookDeliveries)
    .where(eq(webhookDeliveries.endpointId, endpointId))
    .limit(1);
  if (!one) throw new Error("no delivery");
  // Due now, for the test's attempt.
  await db
    .update(webhookDeliveries)
    .set({ nextAttemptAt: new Date(Date.now() - 1000) })
    .where(eq(webhookDeliveries.id, one.id));
  return one.id;
}

async function statusesOf(endpointId: string) {
  const rows = await (await getDb())
    .select({ status: webhookDeliveries.status, n: sql<number>`count(*)::int` })
    .from(webhookDeliveries)
    .where(eq(webhookDeliveries.endpointId, endpointId))
    .groupBy(webhookDeliveries.status);
  return Object.fromEntries(rows.map((r) => [r.status, r.n]));
}

async function disabledEvents(orgId: string) {
  return (await getDb())
    .select()
    .from(auditEvents)
    .where(and(eq(auditEvents.orgId, orgId), eq(auditEvents.action, "webhook.endpoint_disabled")));
}

async function cleanUp(endpointId: string) {
  await (await getDb()).delete(webhookEndpoints).where(eq(webhookEndpoints.id, endpointId));
}

describe("an endpoint with too many deliveries waiting", () => {
  it(`past ${MAX_WAITING_DELIVERIES} waiting, the next attempt turns the endpoint off instead: the waiting deliveries are cancelled, it is audited, new events write nothing for it, and turned on again it receives them`, {
    timeout: 60_000,
  }, async () => {
    const { ctx, orgId, endpointId } = await endpointAtReceiver();
    try {
      const due = await waiting(orgId, endpointId, MAX_WAITING_DELIVERIES + 1);

      const result = await deliverWebhook(due);
      expect(result.kind).toBe("cancelled");
      // No request went to a receiver that far behind.
      expect(receiver.received).toEqual([]);
      expect(await getEndpoint(ctx, endpointId)).toMatchObject({
        enabled: false,
        disabledReason: "backlog",
      });
      expect(await statusesOf(endpointId)).toEqual({ cancelled: MAX_WAITING_DELIVERIES + 1 });
      const [event, ...more] = await disabledEvents(orgId);
      expect(more).toEqual([]);
      expect(event).toMatchObject({
        actorType: "system",
        targetType: "webhook_endpoint",
        targetId: endpointId,
        outcome: "success",
        metadata: {
          reason: "backlog",
          host: new URL(receiver.url).host,
          limit: MAX_WAITING_DELIVERIES,
          cancelled: MAX_WAITING_DELIVERIES + 1,
        },
      });

      // The send's statement (the same INSERT … SELECT) writes nothing for a turned-off endpoint.
      const none = await emitWebhookEvent(await getDb(), {
        orgId,
        type: "message.sent",
        data: { id: "m-after" },
      });
      expect(none.deliveryIds).toEqual([]);

      // The owner turns it on again: new events are written and delivered; the cancelled stay so.
      await setEndpointEnabled(ctx, endpointId, true);
      expect(await getEndpoint(ctx, endpointId)).toMatchObject({
        enabled: true,
        disabledReason: null,
      });
      const again = await emitWebhookEvent(await getDb(), {
        orgId,
        type: "message.sent",
        data: { id: "m-again" },
      });
      expect(again.deliveryIds).toHaveLength(1);
      expect((await deliverWebhook(again.deliveryIds[0] as string)).kind).toBe("delivered");
      expect(await statusesOf(endpointId)).toEqual({
        cancelled: MAX_WAITING_DELIVERIES + 1,
        delivered: 1,
      });
    } finally {
      await cleanUp(endpointId);
    }
  });

  it(`with exactly ${MAX_WAITING_DELIVERIES} waiting, a failed attempt is retried as usual and the endpoint stays on`, {
    timeout: 60_000,
  }, async () => {
    const { ctx, orgId, endpointId } = await endpointAtReceiver();
    // Another organisation's endpoint also has deliveries waiting: they are not this one's.
    const other = await endpointAtReceiver();
    try {
      await waiting(other.orgId, other.endpointId, 10);
      const due = await waiting(orgId, endpointId, MAX_WAITING_DELIVERIES);
      receiver.answers.push({ status: 500 });
      expect((await deliverWebhook(due)).kind).toBe("retry");
      expect(receiver.received).toHaveLength(1);
      expect(await getEndpoint(ctx, endpointId)).toMatchObject({ enabled: true });
      expect(await statusesOf(endpointId)).toEqual({ pending: MAX_WAITING_DELIVERIES });
      expect(await disabledEvents(orgId)).toEqual([]);
    } finally {
      await cleanUp(endpointId);
      await cleanUp(other.endpointId);
    }
  });

  it("a receiver answering 410 Gone turns its endpoint off the same way: audited, its waiting deliveries cancelled", async () => {
    const { ctx, orgId, endpointId } = await endpointAtReceiver();
    try {
      const due = await waiting(orgId, endpointId, 3);
      receiver.answers.push({ status: 410, body: "gone" });
      expect((await deliverWebhook(due)).kind).toBe("failed");
      expect(await getEndpoint(ctx, endpointId)).toMatchObject({
        enabled: false,
        disabledReason: "gone",
      });
      // The one the receiver answered failed with that answer; the others will never be sent.
      expect(await statusesOf(endpointId)).toEqual({ failed: 1, cancelled: 2 });
      const [event] = await disabledEvents(orgId);
      expect(event?.metadata).toMatchObject({ reason: "gone", cancelled: 2 });
    } finally {
      await cleanUp(endpointId);
    }
  });
});
