// Test-only child process for pause.test.ts: registers the parent's demo provider and SMTP
// server through the test seam, then sends through the real send chokepoint in a loop, printing
// one JSON line per attempt (when it started, when it was answered, the outcome's kind) until
// stdin says "stop". Run with `tsx --conditions=react-server`.

import { createInterface } from "node:readline";
import {
  endSendWorker,
  runSendWorker,
  sendAsWorker,
  startSendWorker,
} from "@/lib/testing/send-worker";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

runSendWorker(async () => {
  const s = await startSendWorker();
  let stopping = false;
  const lines = createInterface({ input: process.stdin });
  lines.on("line", (line) => {
    if (line.trim() === "stop") stopping = true;
  });
  process.stdout.write("ready\n");
  for (let i = 0; !stopping; i++) {
    const startedAt = Date.now();
    const outcome = await sendAsWorker(s, `Pause probe ${i}`, "pause-worker");
    const answeredAt = Date.now();
    process.stdout.write(`${JSON.stringify({ startedAt, answeredAt, kind: outcome.kind })}\n`);
    await sleep(5);
  }
  lines.close();
  await endSendWorker();
});
