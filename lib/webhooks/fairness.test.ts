import { and, eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { getDb } from "@/db";
import { insertDelivery } from "@/db/queries/webhooks";
import { webhookDeliveries, webhookEndpoints } from "@/db/schema";
import { memberContext } from "@/lib/testing/context";
import { createOwner } from "@/lib/testing/factories";
import { dispatchWebhookDeliveries } from "./dispatch";
import { webhookBody } from "./emit";
import { createEndpoint } from "./endpoints";
import { deliveryOnce, startWebhookWorker } from "./testing/queue";
import { type Receiver, startReceiver } from "./testing/receiver";

// One organisation cannot take every delivery worker: with organisation X's receiver holding
// every request open and X's deliveries queued ahead, organisation Y's delivery is still made.
// Real parts throughout: local HTTP servers, the real queue (pg-boss) and database.

const X_DELIVERIES = 8;

let hanging: Receiver;
let answering: Receiver;

beforeAll(async () => {
  hanging = await startReceiver();
  answering = await startReceiver();
  await startWebhookWorker();
});

afterAll(async () => {
  await hanging?.close();
  await answering?.close();
});

async function orgWithEndpoint(url: string) {
  const owner = await createOwner("fair");
  const ctx = memberContext(owner.orgId, owner.user, "owner");
  const { endpoint } = await createEndpoint(ctx, {
    url,
    description: "",
    events: ["message.sent"],
  });
  return { orgId: owner.orgId, endpointId: endpoint.id };
}

async function queueDeliveries(orgId: string, endpointId: string, n: number) {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const id = `msg_${crypto.randomUUID().replaceAll("-", "")}`;
    await insertDelivery({
      db: await getDb(),
      values: {
        id,
        orgId,
        endpointId,
        eventType: "message.sent",
        body: webhookBody("message.sent", { id: `m${i}` }),
        nextAttemptAt: new Date(),
        deadlineAt: new Date(Date.now() + 72 * 3_600_000),
      },
    });
    ids.push(id);
  }
  await dispatchWebhookDeliveries(orgId, ids);
  return ids;
}

/**
 * Ends the organisation's deliveries for good, then deletes its endpoints (and with them the
 * deliveries and attempts): nothing pending or mid-attempt is left for a worker to claim.
 */
async function removeOrgWebhooks(orgId: string) {
  const db = await getDb();
  await db
    .update(webhookEndpoints)
    .set({ enabled: false })
    .where(eq(webhookEndpoints.orgId, orgId));
  await expect
    .poll(
      async () => {
        await db
          .update(webhookDeliveries)
          .set({ status: "failed" })
          .where(and(eq(webhookDeliveries.orgId, orgId), eq(webhookDeliveries.status, "pending")));
        const rows = await db
          .select({ status: webhookDeliveries.status })
          .from(webhookDeliveries)
          .where(eq(webhookDeliveries.orgId, orgId))
          .orderBy(webhookDeliveries.id);
        return rows.filter((r) => r.status === "pending" || r.status === "sending").length;
      },
      { timeout: 30_000, interval: 200 },
    )
    .toBe(0);
  await db.delete(webhookEndpoints).where(eq(webhookEndpoints.orgId, orgId));
}

describe("fairness between organisations", () => {
  it("while one organisation's receiver hangs, another's delivery is made", async () => {
    const x = await orgWithEndpoint(hanging.url);
    const y = await orgWithEndpoint(answering.url);
    try {
      for (let i = 0; i < 100; i++) hanging.answers.push("hang");
      await queueDeliveries(x.orgId, x.endpointId, X_DELIVERIES);
      // X's receiver has them: its deliveries hold workers.
      await expect.poll(() => hanging.open(), { timeout: 20_000 }).toBeGreaterThan(0);
      const [yDelivery] = await queueDeliveries(y.orgId, y.endpointId, 1);

      const done = await deliveryOnce(yDelivery ?? "", (row) => row.status === "delivered", 60_000);
      expect(done.status).toBe("delivered");
      const [arrived] = answering.received;
      expect(arrived?.headers["webhook-id"]).toBe(yDelivery);
      // It arrived while X's receiver was still holding requests open…
      const heldThen = hanging.received.filter(
        (r) =>
          r.receivedAt <= (arrived?.receivedAt ?? 0) &&
          (r.closedAt ?? Infinity) >= (arrived?.receivedAt ?? 0),
      );
      expect(heldThen.length).toBeGreaterThan(0);
      // …which never held more than two of the process's workers at once.
      expect(hanging.maxOpen()).toBeLessThanOrEqual(2);
      const xRows = await (await getDb())
        .select({ status: webhookDeliveries.status })
        .from(webhookDeliveries)
        .where(eq(webhookDeliveries.orgId, x.orgId))
        .orderBy(webhookDeliveries.id);
      expect(xRows.filter((r) => r.status === "delivered")).toEqual([]);
    } finally {
      hanging.answers.length = 0;
      await hanging.close();
      await removeOrgWebhooks(x.orgId);
      await removeOrgWebhooks(y.orgId);
    }
  }, 120_000);
});
