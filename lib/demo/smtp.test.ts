import { readdir, rm, stat } from "node:fs/promises";
import net from "node:net";
import path from "node:path";
import tls from "node:tls";
import nodemailer from "nodemailer";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readDemoInbox } from "./inbox";
import {
  type AuthOverride,
  behaviourOfTaggedAddress,
  type DemoBehaviour,
  type DemoSmtp,
  type Introspection,
  startDemoSmtp,
} from "./smtp";
import { tempDataDir } from "./testing";
import { type DemoCertificate, ensureDemoCertificate } from "./tls";

// The SMTP server is tested here against a fixed token table (its `introspect` contract);
// index.test.ts runs it against the real demo provider.
const TOKENS: Record<string, Introspection> = {
  "good-alice": { active: true, scope: "openid email mail.send", sub: "alice@example.com" },
  "good-bob": { active: true, scope: "openid mail.send", sub: "bob@example.com" },
  "no-mail-scope": { active: true, scope: "openid email", sub: "alice@example.com" },
  revoked: { active: false },
};
const introspect = async (token: string): Promise<Introspection> =>
  TOKENS[token] ?? { active: false };

let dataDir: string;
let cert: DemoCertificate;
let implicit: DemoSmtp;
let starttls: DemoSmtp;
let override: ReturnType<AuthOverride> = null;

beforeAll(async () => {
  dataDir = await tempDataDir();
  cert = await ensureDemoCertificate(dataDir);
  const common = { port: 0, dataDir, tls: cert, introspect };
  implicit = await startDemoSmtp({ ...common, authOverride: () => override });
  starttls = await startDemoSmtp({ ...common, mode: "starttls" });
});

afterAll(async () => {
  await implicit?.close();
  await starttls?.close();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

function transport(opts: { user: string; accessToken: string; ca?: string; port?: number }) {
  return nodemailer.createTransport({
    host: "localhost",
    port: opts.port ?? implicit.port,
    secure: true,
    tls: { ca: opts.ca, rejectUnauthorized: true, minVersion: "TLSv1.2" },
    auth: { type: "OAuth2", user: opts.user, accessToken: opts.accessToken },
    connectionTimeout: 5_000,
    greetingTimeout: 5_000,
  });
}

function send(t: ReturnType<typeof transport>, from: string, subject: string) {
  return t.sendMail({
    from: `Alice <${from}>`,
    to: "Someone <someone@example.net>, other@example.net",
    cc: "cc@example.net",
    subject,
    text: "Hello from the demo",
    html: "<p>Hello from the demo</p>",
  });
}

describe("demo TLS certificate", () => {
  it("is trusted through the CA with full verification, for localhost and 127.0.0.1", async () => {
    const server = tls.createServer({ key: cert.key, cert: cert.cert }, (s) => s.end("ok"));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as net.AddressInfo;
    try {
      for (const host of ["localhost", "127.0.0.1"]) {
        const authorized = await new Promise<boolean>((resolve, reject) => {
          const socket = tls.connect({ host, port, ca: cert.ca, rejectUnauthorized: true }, () => {
            resolve(socket.authorized);
            socket.end();
          });
          socket.on("error", reject);
        });
        expect(authorized).toBe(true);
      }
    } finally {
      server.close();
    }
  });

  it("keeps the key private and reuses the same certificate on the next start", async () => {
    const keyFile = path.join(dataDir, "demo", "tls", "key.pem");
    expect((await stat(keyFile)).mode & 0o777).toBe(0o600);
    expect(await ensureDemoCertificate(dataDir)).toEqual(cert);
  });
});

describe("demo SMTP server", () => {
  it("delivers a message sent with a valid XOAUTH2 token over verified TLS", async () => {
    const info = await send(
      transport({ user: "alice@example.com", accessToken: "good-alice", ca: cert.ca }),
      "alice@example.com",
      "Hello inbox",
    );
    expect(info.accepted).toHaveLength(3);

    const [message] = await readDemoInbox(dataDir, { limit: 1 });
    expect(message).toMatchObject({
      subject: "Hello inbox",
      authUser: "alice@example.com",
      envelopeFrom: "alice@example.com",
      envelopeTo: ["someone@example.net", "other@example.net", "cc@example.net"],
      from: "Alice <alice@example.com>",
      to: ["Someone <someone@example.net>", "other@example.net"],
      cc: ["cc@example.net"],
      text: "Hello from the demo",
      html: "<p>Hello from the demo</p>",
      messageId: info.messageId,
    });
    const files = await readdir(path.join(dataDir, "demo", "inbox"));
    const first = files[0] ?? "";
    expect((await stat(path.join(dataDir, "demo", "inbox", first))).mode & 0o777).toBe(0o600);
    // Made by the first message, private: only the server's user may list what was sent.
    expect((await stat(path.join(dataDir, "demo", "inbox"))).mode & 0o777).toBe(0o700);
  });

  it("lists the inbox newest first and honours the limit", async () => {
    const t = transport({ user: "alice@example.com", accessToken: "good-alice", ca: cert.ca });
    await send(t, "alice@example.com", "older");
    await send(t, "alice@example.com", "newer");
    const messages = await readDemoInbox(dataDir, { limit: 2 });
    expect(messages.map((m) => m.subject)).toEqual(["newer", "older"]);
    expect(await readDemoInbox(path.join(dataDir, "nowhere"))).toEqual([]);
  });

  it.each([
    ["an unknown token", "alice@example.com", "garbage"],
    ["an inactive token", "alice@example.com", "revoked"],
    ["a token without mail.send", "alice@example.com", "no-mail-scope"],
    ["another user's token", "alice@example.com", "good-bob"],
  ])("refuses %s like Gmail (334 challenge, then 535)", async (_label, user, accessToken) => {
    const error = await send(
      transport({ user, accessToken, ca: cert.ca }),
      user,
      "should not arrive",
    ).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "EAUTH", responseCode: 535 });
  });

  it("answers the challenge with Gmail's JSON on the wire", async () => {
    const lines = await rawImplicitSession([
      "EHLO test",
      `AUTH XOAUTH2 ${xoauth2("alice@example.com", "garbage")}`,
      "",
    ]);
    const challenge = lines.find((l) => l.startsWith("334 "))?.slice(4) ?? "";
    expect(JSON.parse(Buffer.from(challenge, "base64").toString())).toEqual({
      status: "401",
      schemes: "bearer",
      scope: "mail.send",
    });
    expect(lines.at(-1)).toMatch(/^535 /);
  });

  it("refuses an envelope sender other than the authenticated user (553)", async () => {
    const error = await send(
      transport({ user: "alice@example.com", accessToken: "good-alice", ca: cert.ca }),
      "mallory@example.com",
      "spoofed",
    ).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "EENVELOPE", responseCode: 553 });
  });

  it("fails certificate verification for a client without the CA", async () => {
    const error = await send(
      transport({ user: "alice@example.com", accessToken: "good-alice" }),
      "alice@example.com",
      "no ca",
    ).catch((e: unknown) => e);
    expect(String((error as Error).message)).toMatch(/certificate/i);
  });

  it("gives a plaintext client on the implicit-TLS port no SMTP at all", async () => {
    const received = await new Promise<string>((resolve) => {
      let data = "";
      const socket = net.connect(implicit.port, "127.0.0.1", () => {
        socket.write("EHLO test\r\nAUTH XOAUTH2 abc\r\n");
      });
      socket.on("data", (chunk) => {
        data += chunk.toString("latin1");
      });
      socket.on("close", () => resolve(data));
      socket.on("error", () => {});
      setTimeout(() => socket.destroy(), 2_000);
    });
    expect(received).not.toMatch(/^220 /m);
    expect(received).not.toMatch(/^235 /m);
  });

  it("in STARTTLS mode refuses AUTH before STARTTLS", async () => {
    const lines = await rawPlainSession(starttls.port, [
      "EHLO test",
      `AUTH XOAUTH2 ${xoauth2("alice@example.com", "good-alice")}`,
    ]);
    expect(lines.join("\n")).toMatch(/^250[- ]STARTTLS/m);
    expect(lines.at(-1)).toMatch(/^538 /);
  });

  it("in STARTTLS mode delivers after the upgrade (nodemailer requireTLS)", async () => {
    const t = nodemailer.createTransport({
      host: "localhost",
      port: starttls.port,
      secure: false,
      requireTLS: true,
      tls: { ca: cert.ca, rejectUnauthorized: true, minVersion: "TLSv1.2" },
      auth: { type: "OAuth2", user: "bob@example.com", accessToken: "good-bob" },
    });
    const info = await send(t, "bob@example.com", "via starttls");
    expect(info.accepted).toHaveLength(3);
  });

  it.each([
    [
      535,
      "5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant",
    ],
    [454, "4.7.0 Temporary server error. Please try again later"],
  ])("can answer AUTH like Microsoft: %i", async (code, message) => {
    override = { code, message };
    try {
      const error = await send(
        transport({ user: "alice@example.com", accessToken: "good-alice", ca: cert.ca }),
        "alice@example.com",
        "blocked",
      ).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: "EAUTH", responseCode: code });
      expect((error as { response: string }).response).toContain(message);
    } finally {
      override = null;
    }
  });
});

function xoauth2(user: string, token: string): string {
  return Buffer.from(`user=${user}\x01auth=Bearer ${token}\x01\x01`).toString("base64");
}

/** Sends each line after the previous reply; resolves with every reply line received. */
function converse(socket: net.Socket | tls.TLSSocket, commands: string[]): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const lines: string[] = [];
    let buffer = "";
    let next = 0;
    socket.on("data", (chunk: Buffer) => {
      buffer += chunk.toString("utf8");
      const parts = buffer.split("\r\n");
      buffer = parts.pop() ?? "";
      for (const line of parts) {
        lines.push(line);
        // A reply is complete on a line "NNN text" (not "NNN-text").
        if (!/^\d{3} /.test(line)) continue;
        if (next < commands.length) {
          socket.write(`${commands[next]}\r\n`);
          next++;
        } else {
          socket.end();
          resolve(lines);
        }
      }
    });
    socket.on("error", reject);
    setTimeout(() => reject(new Error(`SMTP conversation stalled: ${lines.join(" | ")}`)), 5_000);
  });
}

function rawPlainSession(port: number, commands: string[]): Promise<string[]> {
  return converse(net.connect(port, "127.0.0.1"), commands);
}

function rawImplicitSession(commands: string[]): Promise<string[]> {
  const socket = tls.connect({
    host: "localhost",
    port: implicit.port,
    ca: cert.ca,
    rejectUnauthorized: true,
  });
  return converse(socket, commands);
}

describe("demo SMTP server at a provider's limits", () => {
  let limited: DemoSmtp;
  let behaviour: DemoBehaviour | null = null;

  beforeAll(async () => {
    limited = await startDemoSmtp({
      port: 0,
      dataDir,
      tls: cert,
      introspect,
      limits: { maxConnectionsPerMailbox: 3, messagesPerWindow: 2, windowMs: 60_000 },
      behaviour: (mailbox) => (mailbox === "bob@example.com" ? behaviour : null),
    });
  });
  afterAll(() => limited?.close());

  function pooled(user: string, accessToken: string, maxConnections: number) {
    return nodemailer.createTransport({
      host: "localhost",
      port: limited.port,
      secure: true,
      pool: true,
      maxConnections,
      tls: { ca: cert.ca, rejectUnauthorized: true, minVersion: "TLSv1.2" },
      auth: { type: "OAuth2", user, accessToken },
    });
  }

  it("answers the fourth concurrent session of one mailbox 432 4.3.2 and counts the peak", async () => {
    const pool = pooled("alice@example.com", "good-alice", 4);
    try {
      const results = await Promise.allSettled(
        Array.from({ length: 8 }, (_, i) => send(pool, "alice@example.com", `burst ${i}`)),
      );
      const refused = results.filter((r) => r.status === "rejected");
      expect(refused.length).toBeGreaterThan(0);
      for (const r of refused) {
        expect((r as PromiseRejectedResult).reason).toMatchObject({
          responseCode: 432,
          response: expect.stringContaining("4.3.2 Concurrent connections limit exceeded"),
        });
      }
    } finally {
      pool.close();
    }
    const stats = limited.stats();
    expect(stats.peakByMailbox["alice@example.com"]).toBe(3);
    expect(stats.refusedConcurrent).toBeGreaterThan(0);
  });

  it("accepts messages over the per-window rate but counts them, and counts each Message-ID", async () => {
    const pool = pooled("bob@example.com", "good-bob", 1);
    try {
      const before = limited.stats();
      const infos = [];
      for (let i = 0; i < 3; i += 1) infos.push(await send(pool, "bob@example.com", `rate ${i}`));
      const after = limited.stats();
      expect(after.acceptedByMailbox["bob@example.com"]).toBe(
        (before.acceptedByMailbox["bob@example.com"] ?? 0) + 3,
      );
      expect(after.overRate).toBe(before.overRate + 1);
      for (const info of infos) expect(after.acceptedMessageIds.get(info.messageId)).toBe(1);
    } finally {
      pool.close();
    }
  });

  it.each([
    [
      "quota_microsoft",
      554,
      "5.2.0 STOREDRV.Submission.Exception:SubmissionQuotaExceededException",
    ],
    ["quota_gmail", 550, "5.4.5 Daily user sending limit exceeded"],
    ["mailbox_full", 554, "5.2.2 mailbox full"],
    ["try_later_gmail", 421, "4.7.0 Try again later"],
  ] as const)("in mode %s answers %i and stores nothing", async (mode, code, text) => {
    behaviour = mode;
    const before = limited.stats().acceptedByMailbox["bob@example.com"] ?? 0;
    try {
      const t = nodemailer.createTransport({
        host: "localhost",
        port: limited.port,
        secure: true,
        tls: { ca: cert.ca, rejectUnauthorized: true, minVersion: "TLSv1.2" },
        auth: { type: "OAuth2", user: "bob@example.com", accessToken: "good-bob" },
      });
      const error = await send(t, "bob@example.com", `mode ${mode}`).catch((e: unknown) => e);
      expect(error).toMatchObject({ responseCode: code, response: expect.stringContaining(text) });
    } finally {
      behaviour = null;
    }
    expect(limited.stats().acceptedByMailbox["bob@example.com"] ?? 0).toBe(before);
  });
});

describe("demo address tags", () => {
  it("map name+limit, +full, +busy and +drop to the provider's replies; other addresses behave normally", () => {
    expect(behaviourOfTaggedAddress("ops+limit@example.com")).toBe("quota_microsoft");
    expect(behaviourOfTaggedAddress("Ops+FULL@Example.com")).toBe("mailbox_full");
    expect(behaviourOfTaggedAddress("a+b+busy@example.com")).toBe("try_later_gmail");
    expect(behaviourOfTaggedAddress("ops+drop@example.com")).toBe("drop_after_data");
    for (const plain of ["ops@example.com", "ops+news@example.com", "ops+limit.x@example.com"]) {
      expect(behaviourOfTaggedAddress(plain)).toBeNull();
    }
    // Object.prototype's names are no tags.
    expect(behaviourOfTaggedAddress("ops+constructor@example.com")).toBeNull();
  });
});
