// Test-only child process for race.test.ts: registers the same demo provider through the test
// seam, waits for "go" on stdin, fires concurrent getAccessToken calls on one mailbox and
// prints what it got as one JSON line. Run with `tsx --conditions=react-server`.
import { createInterface } from "node:readline";
import { closeDb, getDb } from "@/db";
import { buildDemoProvider, registerMailProvider } from "../providers";
import { getAccessToken } from "../tokens";

type RaceSettings = {
  issuer: string;
  clientId: string;
  clientSecret: string;
  tokenEndpoint: string;
  mailboxId: string;
  calls: number;
};

async function main() {
  const settings = JSON.parse(process.env.MAILWARDEN_RACE ?? "{}") as RaceSettings;
  registerMailProvider(
    buildDemoProvider({
      issuer: settings.issuer,
      clientId: settings.clientId,
      clientSecret: settings.clientSecret,
      smtpPort: 2465,
      tokenEndpoint: settings.tokenEndpoint,
    }),
  );
  await getDb();
  const lines = createInterface({ input: process.stdin });
  process.stdout.write("ready\n");
  for await (const line of lines) {
    if (line.trim() === "go") break;
  }
  lines.close();
  const results = await Promise.allSettled(
    Array.from({ length: settings.calls }, () => getAccessToken(settings.mailboxId)),
  );
  const tokens = results.flatMap((r) => (r.status === "fulfilled" ? [r.value.accessToken] : []));
  const errors = results.flatMap((r) =>
    r.status === "rejected" ? [`${(r.reason as Error).name}: ${(r.reason as Error).message}`] : [],
  );
  process.stdout.write(`${JSON.stringify({ tokens: [...new Set(tokens)], errors })}\n`);
  await closeDb();
}

main().catch((error) => {
  process.stderr.write(`${(error as Error).stack ?? error}\n`);
  process.exit(1);
});
