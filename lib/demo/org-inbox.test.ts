import nodemailer from "nodemailer";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { getDb } from "@/db";
import { insertMailboxRow } from "@/lib/oauth/testing/fixtures";
import { createOwner } from "@/lib/testing/factories";
import { readDemoInboxForOrg } from "./org-inbox";
import { type DemoSmtp, startDemoSmtp } from "./smtp";
import { tempDataDir } from "./testing";
import { type DemoCertificate, ensureDemoCertificate } from "./tls";

// Two organisations send through the one real demo SMTP server (one inbox folder for all).

let dataDir: string;
let cert: DemoCertificate;
let smtp: DemoSmtp;
const tokens = new Map<string, string>();

beforeAll(async () => {
  dataDir = await tempDataDir();
  cert = await ensureDemoCertificate(dataDir);
  smtp = await startDemoSmtp({
    port: 0,
    dataDir,
    tls: cert,
    introspect: async (token) => {
      const sub = tokens.get(token);
      return sub ? { active: true, scope: "openid email mail.send", sub } : { active: false };
    },
  });
});

afterAll(() => smtp?.close());

async function sendAs(address: string, subject: string) {
  const token = `token-${address}`;
  tokens.set(token, address);
  const transport = nodemailer.createTransport({
    host: "localhost",
    port: smtp.port,
    secure: true,
    tls: { ca: cert.ca, rejectUnauthorized: true },
    auth: { type: "OAuth2", user: address, accessToken: token },
  });
  await transport.sendMail({ from: address, to: "someone@example.net", subject, text: "hi" });
  transport.close();
}

describe("readDemoInboxForOrg", () => {
  it("shows an organisation only the mail its own demo mailboxes sent", async () => {
    const a = await createOwner("org-a");
    const b = await createOwner("org-b");
    const aliceAddress = `alice-${a.orgId.slice(0, 8)}@example.test`;
    const bobAddress = `bob-${b.orgId.slice(0, 8)}@example.test`;
    await insertMailboxRow({ person: a, provider: "demo", address: aliceAddress });
    await insertMailboxRow({ person: b, provider: "demo", address: bobAddress });
    await sendAs(aliceAddress, "A's payroll");
    await sendAs(bobAddress, "B's newsletter");

    const db = await getDb();
    const seenByA = await readDemoInboxForOrg({ db, orgId: a.orgId, dataDir });
    const seenByB = await readDemoInboxForOrg({ db, orgId: b.orgId, dataDir });
    expect(seenByA.map((m) => m.subject)).toEqual(["A's payroll"]);
    expect(seenByB.map((m) => m.subject)).toEqual(["B's newsletter"]);

    const c = await createOwner("org-c");
    expect(await readDemoInboxForOrg({ db, orgId: c.orgId, dataDir })).toEqual([]);
  });
});
