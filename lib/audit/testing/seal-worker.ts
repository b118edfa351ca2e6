// Test-only child process for seal.test.ts: waits for "go" on stdin, then writes `count`
// high-volume audit events for one organisation from `writers` concurrent writers, each in a
// transaction held open a random moment (so commits land out of id order), while this
// process's sealer runs both in the background and in an explicit loop. Prints one JSON line.
// Run with `tsx --conditions=react-server`.
import { createInterface } from "node:readline";
import { closeDb, getDb } from "@/db";
import { sealPending } from "../seal";
import { stopAuditSealer } from "../sealer";
import { writeAuditEvent } from "../write";

type Settings = { orgId: string; count: number; writers: number; label: string };

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function main() {
  const settings = JSON.parse(process.env.MAILWARDEN_SEAL_RACE ?? "{}") as Settings;
  const db = await getDb();
  const lines = createInterface({ input: process.stdin });
  process.stdout.write("ready\n");
  for await (const line of lines) {
    if (line.trim() === "go") break;
  }
  lines.close();
  let next = 0;
  let isWriting = true;
  const writers = Array.from({ length: settings.writers }, async () => {
    for (let i = next++; i < settings.count; i = next++) {
      await db.transaction(async (tx) => {
        await writeAuditEvent(tx, {
          orgId: settings.orgId,
          actor: { type: "system", label: settings.label },
          action: "message.sent",
          outcome: "success",
          metadata: { i, from: settings.label },
        });
        await sleep(Math.random() * 5);
      });
    }
  });
  const sealer = (async () => {
    let sealed = 0;
    while (isWriting) {
      sealed += (await sealPending({ db, chain: settings.orgId, batchSize: 50 })).sealed;
      await sleep(Math.random() * 10);
    }
    return sealed;
  })();
  await Promise.all(writers);
  isWriting = false;
  const sealed = await sealer;
  await stopAuditSealer();
  process.stdout.write(`${JSON.stringify({ written: settings.count, sealed })}\n`);
  await closeDb();
}

main().catch((error) => {
  process.stderr.write(`${(error as Error).stack ?? error}\n`);
  process.exit(1);
});
