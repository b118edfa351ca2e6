import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import inspector from "node:inspector/promises";
import { closeDb } from "@/db";
import { generateKeySpec } from "@/lib/crypto/keyring";
import { drive } from "./lib";

async function main() {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "mailwarden-prof-"));
  process.env.MAILWARDEN_DATA_DIR = dataDir;
  process.env.TOKEN_ENCRYPTION_KEYS = generateKeySpec("bench");
  const { POST } = await import("@/app/api/v1/messages/route");
  const testing = await import("@/lib/mail/testing");
  const { closeAllMailboxTransports } = await import("@/lib/mail/transport");
  const { createOwner } = await import("@/lib/testing/factories");
  const bed = await testing.startSendTestbed();
  testing.useRateLimits({
    apiKey: { tokens: 1_000_000, window: "1 m" },
    sendMailboxMinuteDemo: { tokens: 1_000_000, window: "1 m" },
    sendMailboxDayDemo: { tokens: 10_000_000, window: "1 d" },
  });
  const owner = await createOwner("bench");
  const address = `bench-${Date.now()}@example.test`;
  const mailboxId = await testing.connectMailbox(owner, address);
  const { token } = await testing.makeApiKey(owner);
  const body = (i: number) => ({ mailbox: mailboxId, to: ["rcpt@example.test"], subject: `Bench ${i}`, text: "A short message body for the throughput benchmark." });
  const viaRoute = async (i: number) => {
    const response = await POST(testing.sendRequest(body(i), { token }));
    if (response.status !== 201) throw new Error(`route answered ${response.status}`);
  };
  await drive(300, 20, viaRoute);
  const session = new inspector.Session();
  session.connect();
  await session.post("Profiler.enable");
  await session.post("Profiler.setSamplingInterval", { interval: 200 });
  await session.post("Profiler.start");
  const cpu0 = process.cpuUsage();
  const r = await drive(4000, 20, viaRoute);
  const cpu = process.cpuUsage(cpu0);
  const { profile } = await session.post("Profiler.stop");
  fs.writeFileSync("/work/tmp/route.cpuprofile", JSON.stringify(profile));
  console.log(r.perSecond.toFixed(0), "msg/s", ((cpu.user + cpu.system) / 1000 / 4000).toFixed(2), "ms cpu/msg");
  closeAllMailboxTransports();
  await bed.close();
  await closeDb();
}
main().then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });
