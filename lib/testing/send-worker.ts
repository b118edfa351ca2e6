// Test-only: "another app process" for tests on PostgreSQL. The parent spawns a worker script
// with spawnSendWorker; the worker takes the parent's demo provider and SMTP server through the
// test seam with startSendWorker and leaves with endSendWorker. Workers run under
// `tsx --conditions=react-server` and speak JSON lines on stdout.
import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import { createInterface, type Interface } from "node:readline";
import { closeDb, getDb } from "@/db";
import { stopAuditSealer } from "@/lib/audit/sealer";
import { sendMessage } from "@/lib/mail/send";
import { closeAllMailboxTransports, type SmtpEndpoint } from "@/lib/mail/transport";
import { buildDemoProvider, registerMailProvider } from "@/lib/oauth/providers";
import type { DemoTestbed } from "@/lib/oauth/testing/demo";
import { memberContext } from "./context";

/** What a worker needs from its parent: the demo provider, the SMTP endpoint, who sends. */
export type SendWorkerSettings = {
  issuer: string;
  clientId: string;
  clientSecret: string;
  tokenEndpoint: string;
  smtp: SmtpEndpoint;
  orgId: string;
  userId: string;
  mailboxId: string;
};

const SETTINGS_ENV = "MAILWARDEN_SEND_WORKER";

/** Parent side: the settings for a worker that sends from `mailboxId` as the owner `owner`. */
export function sendWorkerSettings(
  bed: { oauth: DemoTestbed; endpoint: SmtpEndpoint },
  owner: { orgId: string; user: { id: string } },
  mailboxId: string,
): SendWorkerSettings {
  return {
    issuer: bed.oauth.issuer,
    clientId: bed.oauth.clientId,
    clientSecret: bed.oauth.clientSecret,
    tokenEndpoint: bed.oauth.provider.tokenEndpoint,
    smtp: bed.endpoint,
    orgId: owner.orgId,
    userId: owner.user.id,
    mailboxId,
  };
}

/** Worker side: one dashboard test message through the real chokepoint, as the parent's owner. */
export function sendAsWorker(s: SendWorkerSettings, subject: string, userAgent: string) {
  return sendMessage({
    ctx: memberContext(s.orgId, { id: s.userId, email: "worker" }, "owner", {
      ip: "203.0.113.7",
      userAgent,
    }),
    purpose: "dashboard_test",
    body: {
      type: "value",
      value: { mailbox: s.mailboxId, to: ["rcpt@example.test"], subject, text: "Hi" },
    },
  });
}

/** Parent side: starts `script` with `settings`; limits are not the subject of these tests. */
export function spawnSendWorker(
  script: string,
  settings: SendWorkerSettings & Record<string, unknown>,
): { child: ChildProcessWithoutNullStreams; lines: Interface; stderr: () => string } {
  const child = spawn("npx", ["tsx", "--conditions=react-server", script], {
    env: {
      ...process.env,
      [SETTINGS_ENV]: JSON.stringify(settings),
      RATE_LIMITS: JSON.stringify({
        testSend: { tokens: 100_000, window: "1 m" },
        sendMailboxMinuteDemo: { tokens: 100_000, window: "1 m" },
        sendMailboxDayDemo: { tokens: 100_000, window: "1 d" },
      }),
    },
    stdio: ["pipe", "pipe", "pipe"],
  }) as ChildProcessWithoutNullStreams;
  let stderr = "";
  child.stderr.on("data", (chunk) => {
    stderr += chunk;
  });
  return { child, lines: createInterface({ input: child.stdout }), stderr: () => stderr };
}

/** Worker side: registers the parent's demo provider and opens the database. */
export async function startSendWorker<T extends SendWorkerSettings>(): Promise<T> {
  const s = JSON.parse(process.env[SETTINGS_ENV] ?? "{}") as T;
  registerMailProvider({
    ...buildDemoProvider({
      issuer: s.issuer,
      clientId: s.clientId,
      clientSecret: s.clientSecret,
      smtpPort: s.smtp.port,
      tokenEndpoint: s.tokenEndpoint,
    }),
    smtp: s.smtp,
  });
  await getDb();
  return s;
}

/** Worker side: gives back connections (and their leases), stops the sealer, exits 0. */
export async function endSendWorker(): Promise<never> {
  await closeAllMailboxTransports();
  await stopAuditSealer();
  await closeDb();
  process.exit(0);
}

export function runSendWorker(main: () => Promise<void>): void {
  main().catch((error) => {
    process.stderr.write(`${(error as Error).stack ?? error}\n`);
    process.exit(1);
  });
}
