// Test-only child process for connection-caps-processes.test.ts: another app process on the
// same PostgreSQL. It registers the parent's demo provider and SMTP server through the test
// seam, waits for "go" on stdin, sends `count` messages at once through the send chokepoint and
// prints their outcomes as one JSON line. Run with `tsx --conditions=react-server`.
import { createInterface } from "node:readline";
import {
  endSendWorker,
  runSendWorker,
  type SendWorkerSettings,
  sendAsWorker,
  startSendWorker,
} from "@/lib/testing/send-worker";

runSendWorker(async () => {
  const s = await startSendWorker<SendWorkerSettings & { count: number }>();
  const lines = createInterface({ input: process.stdin });
  process.stdout.write("ready\n");
  for await (const line of lines) {
    if (line.trim() === "go") break;
  }
  lines.close();
  const outcomes = await Promise.all(
    Array.from({ length: s.count }, (_, i) => sendAsWorker(s, `Other process ${i}`, "cap-worker")),
  );
  const kinds = outcomes.map((o) =>
    o.kind === "provider_failed" ? `${o.kind}:${o.code}` : o.kind,
  );
  process.stdout.write(`${JSON.stringify({ kinds })}\n`);
  await endSendWorker();
});
