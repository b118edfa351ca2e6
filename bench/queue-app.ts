// The app process of bench/queue.ts: what instrumentation.ts starts in every app process that
// matters to the queue (the audit sealer, the message workers and their sweep, the job queue),
// on the bench's database, sending through the bench's demo provider and SMTP server. Prints a
// line of JSON with the messages' statuses every second. bench/queue.ts kills it with SIGKILL
// half-way and starts it again; SIGTERM stops it cleanly.
import { sql } from "drizzle-orm";

async function main() {
  const demo = JSON.parse(process.env.BENCH_DEMO ?? "{}") as {
    issuer: string;
    clientId: string;
    clientSecret: string;
    tokenEndpoint: string;
    revocationEndpoint: string;
    smtp: { host: string; port: number; secure: boolean; requireTLS: boolean; ca: string };
  };
  const { buildDemoProvider, registerMailProvider, smtpLimitsFor } = await import(
    "@/lib/oauth/providers"
  );
  registerMailProvider({
    ...buildDemoProvider({ ...demo, smtpPort: demo.smtp.port }),
    smtp: { ...demo.smtp, ...smtpLimitsFor("demo") },
  });
  const { useDemoInboxDataDir } = await import("@/lib/mail/send-queued");
  useDemoInboxDataDir(process.env.BENCH_INBOX_DIR);

  const { closeDb, getDb } = await import("@/db");
  const { startAuditSealer, stopAuditSealer } = await import("@/lib/audit/sealer");
  const { startMessageWorkers, stopMessageSweep } = await import("@/lib/mail/queued");
  const { startQueue, stopQueue } = await import("@/lib/queue");
  const db = await getDb();
  startAuditSealer();
  await startMessageWorkers();
  await startQueue();

  const report = setInterval(async () => {
    try {
      const rows = (await db.execute(
        sql`select status, count(*)::int as n from messages group by status`,
      )) as unknown as { rows: { status: string; n: number }[] };
      const statuses = Object.fromEntries(rows.rows.map((r) => [r.status, r.n]));
      process.stdout.write(`${JSON.stringify({ statuses, at: Date.now() })}\n`);
    } catch {
      // The next tick reports.
    }
  }, 1_000);

  process.on("SIGTERM", async () => {
    clearInterval(report);
    stopMessageSweep();
    await stopQueue({ timeoutMs: 5_000 });
    await stopAuditSealer();
    await closeDb();
    process.exit(0);
  });
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
