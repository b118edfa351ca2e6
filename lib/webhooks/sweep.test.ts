import { eq, inArray } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { getDb } from "@/db";
import { sweepDueDeliveries } from "@/db/queries/webhooks";
import { webhookDeliveries, webhookEndpoints } from "@/db/schema";
import { memberContext } from "@/lib/testing/context";
import { createOwner } from "@/lib/testing/factories";
import { webhookBody } from "./emit";
import { createEndpoint } from "./endpoints";

// The sweep that hands due deliveries to the queue, called as the dispatcher calls it but with
// a small batch. No worker runs here: the sweep only marks what it takes. The deliveries are
// dated 1990, before anything another test leaves due, so they come first.

const BACKLOG = 12;
const BATCH = 4;

async function orgWithEndpoint() {
  const owner = await createOwner("sweep");
  const ctx = memberContext(owner.orgId, owner.user, "owner");
  // An endpoint nobody receives at: nothing here is attempted.
  const { endpoint } = await createEndpoint(ctx, {
    url: "http://127.0.0.1:9/hooks",
    description: "",
    events: ["message.sent"],
  });
  return { orgId: owner.orgId, endpointId: endpoint.id };
}

type Org = Awaited<ReturnType<typeof orgWithEndpoint>>;

/** Deliveries due at the given times (oldest first as given), never enqueued; their ids. */
async function dueDeliveries(
  org: Org,
  times: Date[],
  extra: Partial<typeof webhookDeliveries.$inferInsert> = {},
) {
  const rows = times.map((at, i) => ({
    id: `msg_${crypto.randomUUID().replaceAll("-", "")}`,
    orgId: org.orgId,
    endpointId: org.endpointId,
    eventType: "message.sent",
    body: webhookBody("message.sent", { id: `m${i}` }),
    nextAttemptAt: at,
    deadlineAt: new Date(Date.now() + 72 * 3_600_000),
    ...extra,
  }));
  await (await getDb()).insert(webhookDeliveries).values(rows);
  return rows.map((r) => r.id);
}

const minute = (n: number) => new Date(Date.UTC(1990, 0, 1, 0, n));

async function sweep(limit = BATCH) {
  return (await sweepDueDeliveries({ db: await getDb(), limit })).map((r) => r.id);
}

/** The order RETURNING gives is not the order taken. */
const sorted = (ids: string[]) => [...ids].sort();

async function removeOrgs(...orgs: Org[]) {
  await (await getDb()).delete(webhookEndpoints).where(
    inArray(
      webhookEndpoints.orgId,
      orgs.map((o) => o.orgId),
    ),
  );
}

describe("the sweep", () => {
  it("two sweeps at once take each delivery once", async () => {
    const a = await orgWithEndpoint();
    const b = await orgWithEndpoint();
    try {
      const ours = [
        ...(await dueDeliveries(
          a,
          Array.from({ length: BACKLOG }, (_, i) => minute(i)),
        )),
        ...(await dueDeliveries(b, [minute(1), minute(2)])),
      ];
      const taken: string[] = [];
      for (let i = 0; i < BACKLOG && taken.length < ours.length; i++) {
        const [one, two] = await Promise.all([sweep(), sweep()]);
        taken.push(...[...(one ?? []), ...(two ?? [])].filter((id) => ours.includes(id)));
      }
      expect(sorted(taken)).toEqual(sorted(ours));
    } finally {
      await removeOrgs(a, b);
    }
  });

  it("takes nothing that is not due, leased, or enqueued within two minutes", async () => {
    const a = await orgWithEndpoint();
    try {
      const now = Date.now();
      const notDue = await dueDeliveries(a, [new Date(now + 3_600_000)]);
      const leased = await dueDeliveries(a, [minute(0)], {
        status: "sending",
        leaseUntil: new Date(now + 30_000),
        enqueuedAt: minute(0),
      });
      const justEnqueued = await dueDeliveries(a, [minute(0)], {
        enqueuedAt: new Date(now - 30_000),
      });
      const finished = await dueDeliveries(a, [minute(0)], { status: "delivered" });
      // And what is due beside them is taken.
      const lapsed = await dueDeliveries(a, [minute(1)], {
        status: "sending",
        leaseUntil: minute(2),
        enqueuedAt: minute(0),
      });
      const lost = await dueDeliveries(a, [minute(1)], { enqueuedAt: minute(1) });

      const taken = await sweep(1_000);
      const waiting = [...notDue, ...leased, ...justEnqueued, ...finished];
      expect(taken.filter((id) => waiting.includes(id))).toEqual([]);
      expect(taken).toEqual(expect.arrayContaining([...lapsed, ...lost]));
      const [row] = await (await getDb())
        .select({ enqueuedAt: webhookDeliveries.enqueuedAt })
        .from(webhookDeliveries)
        .where(eq(webhookDeliveries.id, justEnqueued[0] ?? ""));
      expect(row?.enqueuedAt?.getTime()).toBe(now - 30_000);
    } finally {
      await removeOrgs(a);
    }
  });
});
