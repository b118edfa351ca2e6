import { and, eq, sql } from "drizzle-orm";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { getDb } from "@/db";
import { listOutboxForOrg, setNotificationMailbox } from "@/db/queries/notifications";
import { auditEvents, notificationOutbox, webhookDeliveries, webhookEndpoints } from "@/db/schema";
import { insertMailboxRow } from "@/lib/oauth/testing/fixtures";
import { memberContext } from "@/lib/testing/context";
import { createMember, createOwner } from "@/lib/testing/factories";
import { MAX_WAITING_DELIVERIES } from "./breaker";
import { deliverWebhook } from "./deliver";
import { emitWebhookEvent } from "./emit";
import {
  createEndpoint,
  getEndpoint,
  setEndpointEnabled,
  updateEndpoint,
  WebhookEndpointNotFoundError,
} from "./endpoints";
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

async function endpointAtReceiver(path = "") {
  const owner = await createOwner("breaker");
  const ctx = memberContext(owner.orgId, owner.user, "owner");
  const { endpoint } = await createEndpoint(ctx, {
    url: receiver.url + path,
    description: "",
    events: ["message.sent"],
  });
  return { ctx, owner, orgId: owner.orgId, endpointId: endpoint.id };
}

/** The organisation sends notification emails (from a stored mailbox: nothing is sent here). */
async function withNotificationSender(owner: Awaited<ReturnType<typeof createOwner>>) {
  const mailboxId = await insertMailboxRow({ person: owner, provider: "demo" });
  await setNotificationMailbox({ db: await getDb(), orgId: owner.orgId, mailboxId });
}

/** The organisation's queued notification emails, removed (no flush of another test sends them). */
async function takeOutbox(orgId: string) {
  const db = await getDb();
  const rows = await listOutboxForOrg({ db, orgId });
  await db.delete(notificationOutbox).where(eq(notificationOutbox.orgId, orgId));
  return rows;
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
    const { ctx, owner, orgId, endpointId } = await endpointAtReceiver();
    await withNotificationSender(owner);
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
      // The owner is told why, by email.
      const [email, ...others] = await takeOutbox(orgId);
      expect(others).toEqual([]);
      expect(email?.recipient).toBe(owner.user.email?.toLowerCase());
      expect(email?.event.body).toContain(
        `more than ${MAX_WAITING_DELIVERIES.toLocaleString("en")} of its deliveries were waiting`,
      );

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

/** Every delivery of the endpoint due now, as when their retry times come; their ids. */
async function allDue(endpointId: string): Promise<string[]> {
  const rows = await (await getDb())
    .update(webhookDeliveries)
    .set({ nextAttemptAt: new Date(Date.now() - 1000) })
    .where(eq(webhookDeliveries.endpointId, endpointId))
    .returning({ id: webhookDeliveries.id });
  return rows.map((r) => r.id);
}

describe("a person turning an endpoint off", () => {
  it("cancels what waits for it, audited with how many; turned on again, none of it is sent", async () => {
    const { ctx, owner, orgId, endpointId } = await endpointAtReceiver();
    await withNotificationSender(owner);
    try {
      await waiting(orgId, endpointId, 3);

      await setEndpointEnabled(ctx, endpointId, false);
      expect(await statusesOf(endpointId)).toEqual({ cancelled: 3 });
      const [event, ...more] = await disabledEvents(orgId);
      expect(more).toEqual([]);
      expect(event).toMatchObject({
        actorType: "user",
        actorId: owner.user.id,
        targetType: "webhook_endpoint",
        targetId: endpointId,
        outcome: "success",
        ip: "198.51.100.4",
        metadata: { reason: "person", host: new URL(receiver.url).host, cancelled: 3 },
      });
      // The person did it: nobody is emailed about it.
      expect(await takeOutbox(orgId)).toEqual([]);

      // Turned on again; the old deliveries' retry times come: nothing reaches the receiver.
      await setEndpointEnabled(ctx, endpointId, true);
      for (const id of await allDue(endpointId)) await deliverWebhook(id);
      expect(receiver.received).toEqual([]);
      expect(await statusesOf(endpointId)).toEqual({ cancelled: 3 });
      // New events are delivered.
      const again = await emitWebhookEvent(await getDb(), {
        orgId,
        type: "message.sent",
        data: { id: "m-again" },
      });
      expect((await deliverWebhook(again.deliveryIds[0] as string)).kind).toBe("delivered");
      expect(receiver.received).toHaveLength(1);
    } finally {
      await cleanUp(endpointId);
    }
  });

  it("an attempt under way when it is turned off is not retried: turned on again, the receiver does not hear of it again", async () => {
    const { ctx, orgId, endpointId } = await endpointAtReceiver();
    try {
      const event = await emitWebhookEvent(await getDb(), {
        orgId,
        type: "message.sent",
        data: { id: "m-under-way" },
      });
      let answer = () => {};
      const answered = new Promise<void>((resolve) => {
        answer = resolve;
      });
      receiver.answers.push({ status: 500, after: answered });
      const attempt = deliverWebhook(event.deliveryIds[0] as string);
      await expect.poll(() => receiver.received.length).toBe(1);

      await setEndpointEnabled(ctx, endpointId, false);
      answer();
      expect((await attempt).kind).toBe("cancelled");
      expect(await statusesOf(endpointId)).toEqual({ cancelled: 1 });

      await setEndpointEnabled(ctx, endpointId, true);
      for (const id of await allDue(endpointId)) await deliverWebhook(id);
      expect(receiver.received).toHaveLength(1);
    } finally {
      await cleanUp(endpointId);
    }
  });

  it("saving the endpoint's form as off cancels the same way; an endpoint Mailwarden turned off keeps its reason when edited", async () => {
    const { ctx, orgId, endpointId } = await endpointAtReceiver();
    const fields = { url: receiver.url, events: ["message.sent" as const] };
    try {
      await waiting(orgId, endpointId, 2);
      await updateEndpoint(ctx, endpointId, { ...fields, description: "off", enabled: false });
      expect(await statusesOf(endpointId)).toEqual({ cancelled: 2 });
      expect((await disabledEvents(orgId))[0]?.metadata).toMatchObject({
        reason: "person",
        cancelled: 2,
      });
      expect(await getEndpoint(ctx, endpointId)).toMatchObject({
        enabled: false,
        disabledReason: "person",
        description: "off",
      });

      // Turned on, then off by a 410; the form (which sends the state it shows) saved again.
      await setEndpointEnabled(ctx, endpointId, true);
      const event = await emitWebhookEvent(await getDb(), {
        orgId,
        type: "message.sent",
        data: { id: "m-gone" },
      });
      receiver.answers.push({ status: 410 });
      expect((await deliverWebhook(event.deliveryIds[0] as string)).kind).toBe("failed");
      await updateEndpoint(ctx, endpointId, { ...fields, description: "edited", enabled: false });
      expect(await getEndpoint(ctx, endpointId)).toMatchObject({
        enabled: false,
        disabledReason: "gone",
        description: "edited",
      });
    } finally {
      await cleanUp(endpointId);
    }
  });

  it("another organisation's member cannot turn it off or cancel what waits for it", async () => {
    const { orgId, endpointId } = await endpointAtReceiver();
    const stranger = await createOwner("stranger");
    const strangerCtx = memberContext(stranger.orgId, stranger.user, "owner");
    try {
      await waiting(orgId, endpointId, 2);
      await expect(setEndpointEnabled(strangerCtx, endpointId, false)).rejects.toBeInstanceOf(
        WebhookEndpointNotFoundError,
      );
      expect(await statusesOf(endpointId)).toEqual({ pending: 2 });
      expect(await disabledEvents(orgId)).toEqual([]);
    } finally {
      await cleanUp(endpointId);
    }
  });
});

describe("telling the organisation when Mailwarden turns an endpoint off", () => {
  it("the owners and admins of that organisation only are emailed: which host, why, how to turn it on", async () => {
    // A path that holds the receiver's own token: the email names the host only.
    const { owner, orgId, endpointId } = await endpointAtReceiver("/in/tok_s3cr3t?key=k3y");
    await withNotificationSender(owner);
    const admin = await createMember(orgId, "admin");
    await createMember(orgId, "sender");
    // Another organisation, which also has a sender and an endpoint with deliveries waiting.
    const other = await endpointAtReceiver();
    await withNotificationSender(other.owner);
    try {
      await waiting(other.orgId, other.endpointId, 2);
      const due = await waiting(orgId, endpointId, 3);
      receiver.answers.push({ status: 410, body: "gone" });
      expect((await deliverWebhook(due)).kind).toBe("failed");

      const queued = await takeOutbox(orgId);
      expect(queued.map((r) => r.recipient).sort()).toEqual(
        [owner.user.email, admin.email].map((e) => e?.toLowerCase()).sort(),
      );
      const host = new URL(receiver.url).host;
      for (const { event, sentAt } of queued) {
        expect(sentAt).toBeNull();
        expect(event.kind).toBe("webhook_endpoint_disabled");
        expect(event.title).toBe(`Webhook endpoint turned off: ${host}`);
        expect(event.body).toContain("410 Gone");
        expect(event.body).toContain("2 waiting deliveries were cancelled");
        expect(event.body).toContain(`/webhooks/${endpointId}`);
        expect(event.body).toMatch(/turn the endpoint on again/);
        expect(`${event.title} ${event.body}`).not.toMatch(/s3cr3t|k3y|\/in\//);
      }
      expect(await takeOutbox(other.orgId)).toEqual([]);
      expect(await statusesOf(other.endpointId)).toEqual({ pending: 2 });
    } finally {
      await cleanUp(endpointId);
      await cleanUp(other.endpointId);
    }
  });
});
