// Test only: the webhook worker on the real queue (pg-boss on the test database), and waiting
// for deliveries the way a person watching the deliveries list would.
import { eq } from "drizzle-orm";
import { getDb } from "@/db";
import { webhookDeliveries } from "@/db/schema";
import { startQueue } from "@/lib/queue";
import { startWebhooks } from "../dispatch";

export async function startWebhookWorker() {
  await startWebhooks({ pollingIntervalSeconds: 0.5, sweep: false });
  await startQueue();
}

type Row = typeof webhookDeliveries.$inferSelect;

/** A delivery's row once `done` says so (by default: attempted at least once, not mid-attempt). */
export async function deliveryOnce(
  id: string,
  done: (row: Row) => boolean = (row) => row.attempts > 0 && row.status !== "sending",
  timeoutMs = 20_000,
): Promise<Row> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const [row] = await (await getDb())
      .select()
      .from(webhookDeliveries)
      .where(eq(webhookDeliveries.id, id));
    if (row && done(row)) return row;
    if (Date.now() > deadline) throw new Error(`delivery ${id} not done: ${row?.status}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Every delivery of the organisation, once none is waiting for its first attempt. */
export async function orgDeliveriesOnce(orgId: string, timeoutMs = 20_000): Promise<Row[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const rows = await (await getDb())
      .select()
      .from(webhookDeliveries)
      .where(eq(webhookDeliveries.orgId, orgId));
    if (rows.every((r) => r.attempts > 0 && r.status !== "sending")) return rows;
    if (Date.now() > deadline) throw new Error("deliveries not attempted in time");
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
