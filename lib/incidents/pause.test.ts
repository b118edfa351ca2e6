import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { getDb } from "@/db";
import { connectMailbox, type SendTestbed, startSendTestbed } from "@/lib/mail/testing";
import { closeAllMailboxTransports } from "@/lib/mail/transport";
import { resetMailProviders } from "@/lib/oauth/providers";
import { memberContext } from "@/lib/testing/context";
import { createOwner } from "@/lib/testing/factories";
import {
  type SendWorkerSettings,
  sendWorkerSettings,
  spawnSendWorker,
} from "@/lib/testing/send-worker";
import { clearSwitch, setSwitch } from "./switches";

type Attempt = { startedAt: number; answeredAt: number; kind: string };

// PGlite is one process per data folder, so "another app process" needs PostgreSQL.
describe.skipIf(!process.env.DATABASE_URL)("pausing all sending across processes", () => {
  let bed: SendTestbed;

  beforeAll(async () => {
    bed = await startSendTestbed();
  });

  afterAll(async () => {
    closeAllMailboxTransports();
    resetMailProviders();
    await bed?.close();
  });

  function startWorker(settings: SendWorkerSettings) {
    const { child, lines, stderr } = spawnSendWorker(
      path.join("lib", "incidents", "testing", "send-worker.ts"),
      settings,
    );
    const attempts: Attempt[] = [];
    const waiters: Array<{ test: (a: Attempt) => boolean; resolve: (a: Attempt) => void }> = [];
    const ready = new Promise<void>((resolve, reject) => {
      lines.on("line", (line) => {
        if (line === "ready") return resolve();
        if (!line.startsWith("{")) return;
        const attempt = JSON.parse(line) as Attempt;
        attempts.push(attempt);
        for (const w of [...waiters]) {
          if (w.test(attempt)) {
            waiters.splice(waiters.indexOf(w), 1);
            w.resolve(attempt);
          }
        }
      });
      child.once("exit", (code) => reject(new Error(`worker exited (${code}): ${stderr()}`)));
    });
    const next = (test: (a: Attempt) => boolean, timeoutMs = 15_000) =>
      new Promise<Attempt>((resolve, reject) => {
        const found = attempts.find(test);
        if (found) return resolve(found);
        const timer = setTimeout(
          () => reject(new Error(`no such attempt; worker said: ${stderr().slice(-2000)}`)),
          timeoutMs,
        );
        waiters.push({
          test,
          resolve: (a) => {
            clearTimeout(timer);
            resolve(a);
          },
        });
      });
    const stop = () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
        child.once("exit", () => {
          clearTimeout(timer);
          resolve();
        });
        child.stdin.write("stop\n");
      });
    return { ready, attempts, next, stop };
  }

  it("pause-all pulled here refuses the other process's next send within a second; release lets it send", async () => {
    const owner = await createOwner("pause");
    const mailboxId = await connectMailbox(owner, `pause-${Date.now()}@example.test`);
    const worker = startWorker({
      ...sendWorkerSettings(bed, owner, mailboxId),
    });
    try {
      await worker.ready;
      // The other process really sends before the switch.
      await worker.next((a) => a.kind === "sent", 60_000);

      const db = await getDb();
      const scope = { type: "organization" as const, orgId: owner.orgId };
      const ctx = memberContext(owner.orgId, owner.user, "owner");
      await setSwitch({ db, kind: "pause_sending", scope, ctx, reason: "cross-process test" });
      const pulledAt = Date.now();
      const refused = await worker.next((a) => a.startedAt >= pulledAt && a.kind === "paused");
      const delay = refused.answeredAt - pulledAt;
      console.info(`pause-all reached the other process's next send after ${delay} ms`);
      expect(delay).toBeLessThan(1000);
      // Nothing that started after the switch committed went out.
      const after = worker.attempts.filter((a) => a.startedAt >= pulledAt);
      expect(after.every((a) => a.kind === "paused")).toBe(true);

      await clearSwitch({ db, kind: "pause_sending", scope, ctx });
      const releasedAt = Date.now();
      const sent = await worker.next((a) => a.startedAt >= releasedAt && a.kind === "sent");
      console.info(`release reached the other process after ${sent.answeredAt - releasedAt} ms`);
    } finally {
      await worker.stop();
    }
  }, 120_000);
});
