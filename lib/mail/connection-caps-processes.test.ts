import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { getDb } from "@/db";
import { countLeasedSlots } from "@/db/queries/connection-slots";
import { resetMailProviders } from "@/lib/oauth/providers";
import { memberContext } from "@/lib/testing/context";
import { createOwner } from "@/lib/testing/factories";
import {
  type SendWorkerSettings,
  sendWorkerSettings,
  spawnSendWorker,
} from "@/lib/testing/send-worker";
import { sendMessage } from "./send";
import { connectMailbox, type SendTestbed, startSendTestbed, useRateLimits } from "./testing";
import { closeAllMailboxTransports } from "./transport";

// Issue 12's "done when": two app processes on PostgreSQL sending through one mailbox of a
// server that enforces Microsoft's limit (3 sessions per mailbox, 432 4.3.2 past it) never hold
// more than 3 connections, and every message arrives. PGlite is one process per data folder, so
// this needs PostgreSQL.
describe.skipIf(!process.env.DATABASE_URL)("connection caps across two processes", () => {
  let bed: SendTestbed;
  let restoreLimits: () => Promise<void>;

  beforeAll(async () => {
    bed = await startSendTestbed({ limits: { maxConnectionsPerMailbox: 3 } });
    restoreLimits = useRateLimits({
      oauthStart: { tokens: 1_000, window: "1 m" },
      testSend: { tokens: 10_000, window: "1 m" },
      sendMailboxMinuteDemo: { tokens: 10_000, window: "1 m" },
    });
  });

  afterAll(async () => {
    await closeAllMailboxTransports();
    resetMailProviders();
    await restoreLimits?.();
    await bed?.close();
  });

  function startWorker(settings: SendWorkerSettings & { count: number }) {
    const { child, lines, stderr } = spawnSendWorker(
      path.join("lib", "mail", "testing-worker.ts"),
      settings,
    );
    const ready = new Promise<void>((resolve, reject) => {
      lines.on("line", (line) => line === "ready" && resolve());
      child.once("exit", (code) => reject(new Error(`worker exited (${code}): ${stderr()}`)));
    });
    const result = new Promise<{ kinds: string[] }>((resolve, reject) => {
      lines.on("line", (line) => line.startsWith("{") && resolve(JSON.parse(line)));
      child.once(
        "exit",
        (code) => code !== 0 && reject(new Error(`worker failed (${code}): ${stderr()}`)),
      );
    });
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    return { ready, result, exited, go: () => child.stdin.write("go\n") };
  }

  it("30 sends here and 30 in another process at once: never more than 3 connections, no 432, all 60 arrive", async () => {
    const owner = await createOwner("caps");
    const address = `two-processes-${Date.now()}@example.test`;
    const mailboxId = await connectMailbox(owner, address);
    const count = 30;
    const worker = startWorker({
      ...sendWorkerSettings(bed, owner, mailboxId),
      count,
    });
    await worker.ready;
    const ctx = memberContext(owner.orgId, { id: owner.user.id, email: "owner" }, "owner");
    worker.go();
    const started = Date.now();
    const here = await Promise.all(
      Array.from({ length: count }, (_, i) =>
        sendMessage({
          ctx,
          purpose: "dashboard_test",
          body: {
            type: "value",
            value: {
              mailbox: mailboxId,
              to: ["rcpt@example.test"],
              subject: `Here ${i}`,
              text: "Hi",
            },
          },
        }),
      ),
    );
    const there = await worker.result;
    const elapsed = Date.now() - started;

    expect(here.map((o) => o.kind)).toEqual(Array(count).fill("sent"));
    expect(there.kinds).toEqual(Array(count).fill("sent"));
    const stats = bed.smtp.stats();
    expect(stats.peakByMailbox[address]).toBeLessThanOrEqual(3);
    expect(stats.refusedConcurrent).toBe(0);
    expect(stats.acceptedByMailbox[address]).toBe(2 * count);
    console.log(
      `[connection caps] two processes, ${2 * count} messages: peak ${stats.peakByMailbox[address]} connections, ${stats.refusedConcurrent} × 432, ${elapsed} ms`,
    );
    // The worker gives its leases back on the way out; ours go with our connections.
    await worker.exited;
    await closeAllMailboxTransports();
    expect(await countLeasedSlots({ db: await getDb(), mailboxId })).toBe(0);
  }, 120_000);
});
