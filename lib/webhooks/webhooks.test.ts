import dgram from "node:dgram";
import { and, eq } from "drizzle-orm";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { getDb } from "@/db";
import { insertDelivery } from "@/db/queries/webhooks";
import { auditEvents, webhookAttempts, webhookDeliveries, webhookEndpoints } from "@/db/schema";
import { env } from "@/lib/env";
import { clearOfMinuteTurn, useRateLimits } from "@/lib/mail/testing";
import { RateLimitedError } from "@/lib/ratelimit/runtime";
import { memberContext } from "@/lib/testing/context";
import { createOwner } from "@/lib/testing/factories";
import { isForbiddenAddress, resolveWebhookTarget } from "./address";
import { deliverWebhook } from "./deliver";
import { sweepWebhookDeliveries } from "./dispatch";
import { webhookBody } from "./emit";
import {
  createEndpoint,
  getEndpoint,
  MAX_WEBHOOK_ENDPOINTS,
  rotateEndpointSecret,
  sendTestDelivery,
  updateEndpoint,
  WebhookEndpointNotFoundError,
  WebhookInputError,
} from "./endpoints";
import { postWebhook } from "./http";
import { verifyWebhook } from "./signing";
import { deliveryOnce, startWebhookWorker } from "./testing/queue";
import { type Received, type Receiver, startReceiver } from "./testing/receiver";

// A real local HTTP server receives the webhooks; the database is the real one (PGlite or
// PostgreSQL) and so is the queue (pg-boss on it). The retry tests drive one delivery's
// attempts themselves (deliverWebhook), on a delivery put in the table without a job. Demo mode (the test default) lets endpoints be on loopback; the SSRF tests turn
// it off on the real settings object for their duration.

let receiver: Receiver;
let restoreLimits: () => Promise<void>;

beforeAll(async () => {
  receiver = await startReceiver();
  restoreLimits = useRateLimits({ webhookTest: { tokens: 1_000, window: "1 m" } });
  await startWebhookWorker();
});

afterAll(async () => {
  await restoreLimits?.();
  await receiver?.close();
});

afterEach(() => {
  receiver.received.length = 0;
  receiver.answers.length = 0;
});

async function owner() {
  const o = await createOwner("hooks");
  return { ...o, ctx: memberContext(o.orgId, o.user, "owner") };
}

/** An endpoint for `message.sent` at the test receiver. */
function endpointAtReceiver(ctx: Awaited<ReturnType<typeof owner>>["ctx"]) {
  return createEndpoint(ctx, { url: receiver.url, description: "", events: ["message.sent"] });
}

function verify(secret: string, r: Received, body = r.body) {
  const h = (name: string) => (r.headers[name] as string | undefined) ?? null;
  return verifyWebhook(
    secret,
    { id: h("webhook-id"), timestamp: h("webhook-timestamp"), signature: h("webhook-signature") },
    body,
  );
}

async function withoutDemoMode<T>(work: () => Promise<T>): Promise<T> {
  const settings = env();
  const was = settings.isDemo;
  settings.isDemo = false;
  try {
    return await work();
  } finally {
    settings.isDemo = was;
  }
}

async function attemptsOf(deliveryId: string) {
  return (await getDb())
    .select()
    .from(webhookAttempts)
    .where(eq(webhookAttempts.deliveryId, deliveryId))
    .orderBy(webhookAttempts.attemptedAt);
}

async function deliveryRow(deliveryId: string) {
  const [row] = await (await getDb())
    .select()
    .from(webhookDeliveries)
    .where(eq(webhookDeliveries.id, deliveryId));
  if (!row) throw new Error("no delivery");
  return row;
}

/** A delivery due now and marked enqueued, so that only the test attempts it. */
async function newDelivery(orgId: string, endpointId: string) {
  const id = `msg_${crypto.randomUUID().replaceAll("-", "")}`;
  await insertDelivery({
    db: await getDb(),
    values: {
      id,
      orgId,
      endpointId,
      eventType: "message.sent",
      body: webhookBody("message.sent", { id: "m1" }),
      nextAttemptAt: new Date(),
      enqueuedAt: new Date(),
      deadlineAt: new Date(Date.now() + 72 * 3_600_000),
    },
  });
  return id;
}

/** A DNS server on a local UDP port that reads every query and never answers one. */
/** A local DNS server: `reply` answers a query packet (null: never answers). */
async function dnsServer(reply: (query: Buffer) => Buffer | null = () => null) {
  const socket = dgram.createSocket("udp4");
  let queries = 0;
  socket.on("message", (query, from) => {
    queries++;
    const answer = reply(query);
    if (answer) socket.send(answer, from.port, from.address);
  });
  await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", resolve));
  return {
    servers: [`127.0.0.1:${socket.address().port}`],
    queries: () => queries,
    close: () => new Promise<void>((resolve) => socket.close(() => resolve())),
  };
}

const silentDnsServer = () => dnsServer();

/**
 * Answers A queries with `ipv4` and AAAA queries with SERVFAIL, as a DNS server with a broken
 * IPv6 zone does (RFC 1035 4.1: header, the question echoed, one answer record).
 */
function aOnlyWithBrokenAaaa(ipv4: string) {
  return (query: Buffer): Buffer => {
    const questionEnd = query.indexOf(0, 12) + 5; // the name's last label, then type and class
    const question = query.subarray(12, questionEnd);
    const type = query.readUInt16BE(questionEnd - 4);
    const header = Buffer.alloc(12);
    query.copy(header, 0, 0, 2);
    header.writeUInt16BE(type === 1 ? 0x8180 : 0x8182, 2); // response; rcode 0, or 2 SERVFAIL
    header.writeUInt16BE(1, 4);
    header.writeUInt16BE(type === 1 ? 1 : 0, 6);
    if (type !== 1) return Buffer.concat([header, question]);
    const record = Buffer.alloc(16);
    record.writeUInt16BE(0xc00c, 0); // the question's name
    record.writeUInt16BE(1, 2); // A
    record.writeUInt16BE(1, 4); // IN
    record.writeUInt32BE(60, 6); // TTL
    record.writeUInt16BE(4, 10);
    ipv4.split(".").forEach((octet, i) => {
      record[12 + i] = Number(octet);
    });
    return Buffer.concat([header, question, record]);
  };
}

async function endpointRowsOf(orgId: string) {
  return (await getDb()).select().from(webhookEndpoints).where(eq(webhookEndpoints.orgId, orgId));
}

/** As if the wait were over: the delivery is due now. */
async function makeDue(deliveryId: string) {
  await (await getDb())
    .update(webhookDeliveries)
    .set({ nextAttemptAt: new Date(Date.now() - 1000) })
    .where(eq(webhookDeliveries.id, deliveryId));
}

describe("endpoints and their secret", () => {
  it("shows the whsec_ secret once, stores it sealed, and audits the creation", async () => {
    const { ctx, orgId } = await owner();
    const { endpoint, secret } = await createEndpoint(ctx, {
      url: receiver.url,
      description: "orders service",
      events: ["message.sent", "message.failed"],
    });
    expect(secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    expect(Buffer.from(secret.slice(6), "base64")).toHaveLength(32);
    expect(JSON.stringify(endpoint)).not.toContain(secret.slice(6));
    expect(JSON.stringify(await getEndpoint(ctx, endpoint.id))).not.toContain(secret.slice(6));
    const [row] = await (await getDb())
      .select()
      .from(webhookEndpoints)
      .where(eq(webhookEndpoints.id, endpoint.id));
    expect(row?.secret).toMatch(/^v1\./);
    expect(row?.secret).not.toContain(secret.slice(6));
    const events = await (await getDb())
      .select()
      .from(auditEvents)
      .where(and(eq(auditEvents.orgId, orgId), eq(auditEvents.action, "webhook.endpoint_created")));
    expect(events).toHaveLength(1);
    expect(JSON.stringify(events)).not.toContain(secret.slice(6));
  });

  it("refuses a bad URL and no events with errors naming the field, storing nothing", async () => {
    const { ctx } = await owner();
    const attempt = (url: string, events = ["message.sent" as const]) =>
      createEndpoint(ctx, { url, description: "", events }).catch((e: unknown) => e);
    for (const url of ["not a url", "ftp://example.com/x", "https://user:pw@example.com/"]) {
      const error = await attempt(url);
      expect(error).toBeInstanceOf(WebhookInputError);
      expect((error as WebhookInputError).field).toBe("url");
    }
    const none = await attempt(receiver.url, []);
    expect((none as WebhookInputError).field).toBe("events");
    const rows = await (await getDb())
      .select()
      .from(webhookEndpoints)
      .where(eq(webhookEndpoints.orgId, ctx.orgId));
    expect(rows).toEqual([]);
  });

  it("another organisation's endpoint reads as one that does not exist", async () => {
    const a = await owner();
    const b = await owner();
    const { endpoint } = await createEndpoint(a.ctx, {
      url: receiver.url,
      description: "",
      events: ["message.sent"],
    });
    const foreign = await getEndpoint(b.ctx, endpoint.id).catch((e: Error) => e);
    const nowhere = await getEndpoint(b.ctx, crypto.randomUUID()).catch((e: Error) => e);
    expect(foreign).toBeInstanceOf(WebhookEndpointNotFoundError);
    expect((foreign as Error).message).toBe((nowhere as Error).message);
    const test = await sendTestDelivery(b.ctx, endpoint.id).catch((e: Error) => e);
    expect(test).toBeInstanceOf(WebhookEndpointNotFoundError);
    expect(receiver.received).toEqual([]);
  });
});

describe("signed deliveries", () => {
  it("a test delivery arrives signed per Standard Webhooks; a tampered body fails", async () => {
    const { ctx, orgId } = await owner();
    const { endpoint, secret } = await createEndpoint(ctx, {
      url: receiver.url,
      description: "",
      events: ["mailbox.recovered"],
    });
    const id = await sendTestDelivery(ctx, endpoint.id);
    await deliveryOnce(id);
    expect(receiver.received).toHaveLength(1);
    const [got] = receiver.received as [Received];
    expect(got.headers["webhook-id"]).toBe(id);
    expect(got.headers["webhook-id"]).toMatch(/^msg_[0-9a-f]{32}$/);
    expect(Math.abs(Number(got.headers["webhook-timestamp"]) - Date.now() / 1000)).toBeLessThan(60);
    expect(got.headers["webhook-signature"]).toMatch(/^v1,[A-Za-z0-9+/]{43}=$/);
    expect(got.headers["content-type"]).toBe("application/json");
    expect(JSON.parse(got.body)).toMatchObject({
      type: "webhook.test",
      data: { endpointId: endpoint.id },
    });
    expect(verify(secret, got)).toBe(true);
    expect(verify(secret, got, got.body.replace("test", "tesT"))).toBe(false);
    expect(verify(`whsec_${Buffer.alloc(32, 1).toString("base64")}`, got)).toBe(false);

    expect((await deliveryRow(id)).status).toBe("delivered");
    const [attempt] = await attemptsOf(id);
    expect(attempt).toMatchObject({ statusCode: 200, responseExcerpt: "ok", nextRetryAt: null });
    const audited = await (await getDb())
      .select()
      .from(auditEvents)
      .where(and(eq(auditEvents.orgId, orgId), eq(auditEvents.action, "webhook.test_sent")));
    expect(audited).toHaveLength(1);
  });

  it("after a rotation both secrets sign for the overlap; the new one alone verifies too", async () => {
    const { ctx, orgId } = await owner();
    const { endpoint, secret: first } = await endpointAtReceiver(ctx);
    const { secret: second, previousValidUntil } = await rotateEndpointSecret(ctx, endpoint.id);
    expect(second).not.toBe(first);
    expect(previousValidUntil?.getTime()).toBeGreaterThan(Date.now() + 23 * 3_600_000);
    await deliveryOnce(await sendTestDelivery(ctx, endpoint.id));
    const [got] = receiver.received as [Received];
    expect((got.headers["webhook-signature"] as string).split(" ")).toHaveLength(2);
    expect(verify(second, got)).toBe(true);
    expect(verify(first, got)).toBe(true);

    // Once the overlap is over, only the new secret signs.
    await (await getDb())
      .update(webhookEndpoints)
      .set({ previousSecretExpiresAt: new Date(Date.now() - 1000) })
      .where(eq(webhookEndpoints.id, endpoint.id));
    receiver.received.length = 0;
    await deliveryOnce(await sendTestDelivery(ctx, endpoint.id));
    const [later] = receiver.received as [Received];
    expect(verify(second, later)).toBe(true);
    expect(verify(first, later)).toBe(false);
    const rotated = await (await getDb())
      .select()
      .from(auditEvents)
      .where(and(eq(auditEvents.orgId, orgId), eq(auditEvents.action, "webhook.secret_rotated")));
    expect(rotated).toHaveLength(1);
  });
});

describe("retries", () => {
  it("after a 500 the queue tries again 5 s later, with the same id, and it is delivered", async () => {
    const { ctx } = await owner();
    const { endpoint, secret } = await endpointAtReceiver(ctx);
    receiver.answers.push({ status: 500, body: "database down" });
    const id = await sendTestDelivery(ctx, endpoint.id);
    const waiting = await deliveryOnce(id);
    expect(waiting.status).toBe("pending");
    const wait = (waiting.nextAttemptAt?.getTime() ?? 0) - Date.now();
    expect(wait).toBeGreaterThan(3_000);
    expect(wait).toBeLessThan(6_000);

    const done = await deliveryOnce(id, (row) => row.status === "delivered");
    expect(done.attempts).toBe(2);
    const [first, second] = receiver.received as [Received, Received];
    expect(second.receivedAt - first.receivedAt).toBeGreaterThanOrEqual(4_900);
    expect(new Set(receiver.received.map((r) => r.headers["webhook-id"]))).toEqual(new Set([id]));
    expect(receiver.received.every((r) => verify(secret, r))).toBe(true);
    const attempts = await attemptsOf(id);
    expect(attempts.map((a) => [a.statusCode, a.responseExcerpt])).toEqual([
      [500, "database down"],
      [200, "ok"],
    ]);
    expect(attempts[0]?.nextRetryAt).not.toBeNull();
    expect(attempts[1]?.nextRetryAt).toBeNull();
  });

  it("backs off along the schedule, honours Retry-After, and never attempts early", async () => {
    const { ctx, orgId } = await owner();
    const { endpoint } = await endpointAtReceiver(ctx);
    const id = await newDelivery(orgId, endpoint.id);
    receiver.answers.push(
      { status: 500 },
      { status: 500 },
      { status: 503, body: "busy", headers: { "retry-after": "7200" } },
    );
    for (let i = 0; i < 3; i++) {
      const result = await deliverWebhook(id);
      expect(result.kind).toBe("retry");
      if (i === 0) expect((await deliverWebhook(id)).kind).toBe("skipped");
      await makeDue(id);
    }
    // Each wait counted from its attempt: 5 s, 5 min, then 30 min by the schedule but 2 h by
    // the receiver's Retry-After (the schedule adds up to 10% jitter).
    const waits = (await attemptsOf(id)).map(
      (a) => (a.nextRetryAt?.getTime() ?? 0) - a.attemptedAt.getTime(),
    );
    const near = (ms: number, target: number) => ms >= target && ms <= target * 1.1 + 50;
    expect(near(waits[0] ?? 0, 5_000)).toBe(true);
    expect(near(waits[1] ?? 0, 300_000)).toBe(true);
    expect(near(waits[2] ?? 0, 7_200_000)).toBe(true);
  });

  it("stops at the deadline: the delivery fails instead of waiting again", async () => {
    const { ctx, orgId } = await owner();
    const { endpoint } = await endpointAtReceiver(ctx);
    const id = await newDelivery(orgId, endpoint.id);
    await (await getDb())
      .update(webhookDeliveries)
      .set({ deadlineAt: new Date(Date.now() + 3_000) })
      .where(eq(webhookDeliveries.id, id));
    receiver.answers.push({ status: 502 });
    // The next wait (5 s) would pass the deadline.
    expect(await deliverWebhook(id)).toMatchObject({ kind: "failed", statusCode: 502 });
    expect((await deliveryRow(id)).status).toBe("failed");
  });

  it("a redirect is not followed; a 410 turns the endpoint off", async () => {
    const { ctx, orgId } = await owner();
    const { endpoint } = await endpointAtReceiver(ctx);
    const id = await newDelivery(orgId, endpoint.id);
    receiver.answers.push({ status: 302, headers: { location: `${receiver.url}/elsewhere` } });
    expect((await deliverWebhook(id)).kind).toBe("retry");
    expect(receiver.received.map((r) => r.path)).toEqual(["/hooks"]);
    expect((await attemptsOf(id))[0]).toMatchObject({
      statusCode: 302,
      error: "redirect_not_followed",
    });

    receiver.answers.push({ status: 410, body: "gone" });
    await makeDue(id);
    expect((await deliverWebhook(id)).kind).toBe("failed");
    expect(await getEndpoint(ctx, endpoint.id)).toMatchObject({
      enabled: false,
      disabledReason: "gone",
    });
  });
});

describe("where webhooks may go", () => {
  it("refuses loopback, private, link-local, CGNAT, multicast and mapped addresses", () => {
    for (const bad of [
      "127.0.0.1",
      "127.1.2.3",
      "10.0.0.1",
      "172.16.5.4",
      "192.168.1.1",
      "169.254.169.254",
      "100.64.0.1",
      "224.0.0.1",
      "0.0.0.0",
      "255.255.255.255",
      "::1",
      "::",
      "fe80::1",
      "fc00::1",
      "fd12:3456::1",
      "ff02::1",
      "::ffff:127.0.0.1",
      "::ffff:7f00:1",
      "::ffff:10.0.0.1",
      "::ffff:a9fe:a9fe",
      "64:ff9b::a00:1",
      // Tunnels that carry IPv4 inside (6to4 of 127.0.0.1, Teredo) and local-use NAT64.
      "2002:7f00:1::1",
      "2001:0:4136:e378:8000:63bf:3fff:fdd2",
      "64:ff9b:1::a00:1",
      "not an address",
    ]) {
      expect(isForbiddenAddress(bad), bad).toBe(true);
    }
    for (const good of ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8"]) {
      expect(isForbiddenAddress(good), good).toBe(false);
    }
  });

  it("outside demo mode a URL resolving to 127.0.0.1 is refused at registration and at delivery", async () => {
    const { ctx } = await owner();
    // Registered in demo mode, where loopback is allowed…
    const { endpoint } = await createEndpoint(ctx, {
      url: `http://localhost:${receiver.port}/hooks`,
      description: "",
      events: ["message.sent"],
    });
    const allowed = await sendTestDelivery(ctx, endpoint.id);
    await deliveryOnce(allowed);
    expect((await deliveryRow(allowed)).status).toBe("delivered");
    expect(receiver.received).toHaveLength(1);

    await withoutDemoMode(async () => {
      // …registration now names the field and the address (on port 443: another port is
      // refused before its address is looked at),
      const refused = await createEndpoint(ctx, {
        url: "https://localhost/hooks",
        description: "",
        events: ["message.sent"],
      }).catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(WebhookInputError);
      expect((refused as WebhookInputError).field).toBe("url");
      expect((refused as Error).message).toMatch(/127\.0\.0\.1|::1/);
      // Aimed at an internal address: recorded, as someone may be probing.
      const [audited] = await (await getDb())
        .select()
        .from(auditEvents)
        .where(
          and(eq(auditEvents.orgId, ctx.orgId), eq(auditEvents.action, "webhook.endpoint_refused")),
        );
      expect(audited).toMatchObject({
        outcome: "denied",
        metadata: { reason: "forbidden_address", host: "localhost" },
      });
      const plain = await createEndpoint(ctx, {
        url: "http://example.com/hooks",
        description: "",
        events: ["message.sent"],
      }).catch((e: unknown) => e);
      expect((plain as Error).message).toMatch(/https/);
      // …and the delivery is refused before any connection (the URL made https on 443, as
      // required).
      await (await getDb())
        .update(webhookEndpoints)
        .set({ url: "https://localhost/hooks" })
        .where(eq(webhookEndpoints.id, endpoint.id));
      const id = await sendTestDelivery(ctx, endpoint.id);
      await deliveryOnce(id);
      const [attempt] = await attemptsOf(id);
      expect(attempt).toMatchObject({ statusCode: null, error: "forbidden_address" });
      expect(attempt?.responseExcerpt).toMatch(/127\.0\.0\.1|::1/);
    });
    expect(receiver.received).toHaveLength(1);
  });

  it("outside demo mode only ports 443 and 8443: another port is refused naming the URL field and audited, and a delivery to one is not attempted", async () => {
    const { ctx, orgId } = await owner();
    const dns = await silentDnsServer();
    await withoutDemoMode(async () => {
      // Ports of services a public host may also run (ssh, smtp, http, PostgreSQL, Redis,
      // memcached, MongoDB, Elasticsearch): refused before DNS is asked about the host.
      for (const port of [22, 25, 80, 5432, 6379, 11211, 27017, 9200]) {
        const refused = await createEndpoint(
          ctx,
          {
            url: `https://hooks.example.com:${port}/in`,
            description: "",
            events: ["message.sent"],
          },
          { dns: { servers: dns.servers } },
        ).catch((e: unknown) => e);
        expect(refused, String(port)).toBeInstanceOf(WebhookInputError);
        expect((refused as WebhookInputError).field).toBe("url");
        expect((refused as Error).message).toBe(
          `Port ${port} is not allowed: webhooks go only to port 443 (the https default) or 8443.`,
        );
      }
      expect(dns.queries()).toBe(0);
      expect(await endpointRowsOf(orgId)).toEqual([]);
      const audited = await (await getDb())
        .select()
        .from(auditEvents)
        .where(
          and(eq(auditEvents.orgId, orgId), eq(auditEvents.action, "webhook.endpoint_refused")),
        )
        .orderBy(auditEvents.id);
      expect(audited).toHaveLength(8);
      expect(audited[4]).toMatchObject({
        outcome: "denied",
        metadata: { reason: "port", host: "hooks.example.com:6379" },
      });

      // 443, written or not, and 8443 are taken (public addresses, so no DNS is asked).
      for (const url of [
        "https://93.184.216.34/in",
        "https://93.184.216.34:443/in",
        "https://93.184.216.34:8443/in",
      ]) {
        const target = await resolveWebhookTarget(url, { allowPrivate: false });
        expect(target.address, url).toBe("93.184.216.34");
      }
    });
    await dns.close();

    // An endpoint stored on another port (before this rule, or in demo mode) fails at delivery,
    // without a connection.
    const { endpoint } = await endpointAtReceiver(ctx);
    await (await getDb())
      .update(webhookEndpoints)
      .set({ url: "https://93.184.216.34:6379/in" })
      .where(eq(webhookEndpoints.id, endpoint.id));
    const id = await newDelivery(orgId, endpoint.id);
    await withoutDemoMode(async () => {
      expect(await deliverWebhook(id)).toMatchObject({ kind: "failed", error: "port" });
    });
    expect((await attemptsOf(id))[0]?.responseExcerpt).toMatch(/^Port 6379 is not allowed/);
    await (await getDb()).delete(webhookEndpoints).where(eq(webhookEndpoints.orgId, orgId));
  });

  it("connects to the address that was checked, not to a second DNS answer", async () => {
    // The host name does not resolve at all: reaching the receiver proves that the connection
    // used the checked address instead of looking the name up again.
    const target = {
      url: new URL(`http://rebind.invalid:${receiver.port}/hooks`),
      address: "127.0.0.1",
      family: 4 as const,
    };
    const result = await postWebhook(target, { "webhook-id": "msg_x" }, "{}");
    expect(result).toMatchObject({ kind: "answered", statusCode: 200 });
    expect(receiver.received[0]?.headers.host).toBe(`rebind.invalid:${receiver.port}`);
    await expect(
      resolveWebhookTarget(`http://rebind.invalid:${receiver.port}/`, { allowPrivate: true }),
    ).rejects.toMatchObject({ code: "dns" });
  });

  it("a host whose A answer is fine and whose AAAA answer is broken resolves to its IPv4 address", async () => {
    const dns = await dnsServer(aOnlyWithBrokenAaaa("93.184.216.34"));
    try {
      const target = await resolveWebhookTarget("https://v4only.example/hooks", {
        allowPrivate: false,
        dns: { servers: dns.servers },
      });
      expect(target).toMatchObject({ address: "93.184.216.34", family: 4 });
      expect(dns.queries()).toBeGreaterThanOrEqual(2);
    } finally {
      await dns.close();
    }
    // A private A answer is still refused, whatever AAAA says.
    const privateDns = await dnsServer(aOnlyWithBrokenAaaa("10.0.0.7"));
    try {
      await expect(
        resolveWebhookTarget("https://inside.example/hooks", {
          allowPrivate: false,
          dns: { servers: privateDns.servers },
        }),
      ).rejects.toMatchObject({ code: expect.not.stringMatching(/^dns/) });
    } finally {
      await privateDns.close();
    }
  });

  it("a host whose DNS never answers is refused within the bound, naming the URL field", async () => {
    const { ctx } = await owner();
    const dns = await silentDnsServer();
    try {
      const refused = await createEndpoint(
        ctx,
        { url: "https://hangs.example/hooks", description: "", events: ["message.sent"] },
        { dns: { servers: dns.servers } },
      ).catch((e: unknown) => e);
      // The default bound (5 s) in the message: the resolver's own give-up (20 s and more) ends
      // with another code.
      expect(dns.queries()).toBeGreaterThan(0);
      expect(refused).toBeInstanceOf(WebhookInputError);
      expect((refused as WebhookInputError).field).toBe("url");
      expect((refused as Error).message).toBe(
        "No DNS answer for hangs.example within 5 s: check the host name, or try again later.",
      );
      expect(await endpointRowsOf(ctx.orgId)).toEqual([]);
    } finally {
      await dns.close();
    }
  });

  it("a delivery whose host's DNS never answers is a failed attempt, retried later", async () => {
    const { ctx, orgId } = await owner();
    const { endpoint } = await endpointAtReceiver(ctx);
    await (await getDb())
      .update(webhookEndpoints)
      .set({ url: `http://hangs.example:${receiver.port}/hooks` })
      .where(eq(webhookEndpoints.id, endpoint.id));
    const id = await newDelivery(orgId, endpoint.id);
    const dns = await silentDnsServer();
    try {
      const result = await deliverWebhook(id, { dns: { servers: dns.servers, timeoutMs: 1_000 } });
      expect(result).toMatchObject({ kind: "retry", statusCode: null, error: "dns_timeout" });
    } finally {
      await dns.close();
    }
    expect(dns.queries()).toBeGreaterThan(0);
    expect((await deliveryRow(id)).status).toBe("pending");
    const [attempt] = await attemptsOf(id);
    expect(attempt?.responseExcerpt).toMatch(/^No DNS answer for hangs\.example within 1 s/);
    expect(attempt?.nextRetryAt).not.toBeNull();
    expect(receiver.received).toEqual([]);
  });

  it("gives up on a receiver that does not answer in time and caps what it reads", async () => {
    const target = { url: new URL(receiver.url), address: "127.0.0.1", family: 4 as const };
    receiver.answers.push("hang");
    expect(await postWebhook(target, {}, "{}", { timeoutMs: 300 })).toMatchObject({
      kind: "error",
      error: "timeout",
    });
    receiver.answers.push({ status: 200, body: "x".repeat(2_000_000) });
    const big = await postWebhook(target, {}, "{}");
    expect(big).toMatchObject({ kind: "answered", statusCode: 200 });
    expect(big.kind === "answered" && big.excerpt.length).toBe(300);
  });
});

describe("the test button", () => {
  it("is rate limited per person", async () => {
    const { ctx } = await owner();
    const { endpoint } = await endpointAtReceiver(ctx);
    await clearOfMinuteTurn();
    const restore = useRateLimits({ webhookTest: { tokens: 2, window: "1 m" } });
    const ids: string[] = [];
    try {
      ids.push(await sendTestDelivery(ctx, endpoint.id));
      ids.push(await sendTestDelivery(ctx, endpoint.id));
      const third = await sendTestDelivery(ctx, endpoint.id).catch((e: unknown) => e);
      expect(third).toBeInstanceOf(RateLimitedError);
      expect((third as RateLimitedError).retryAfterSeconds).toBeGreaterThan(0);
    } finally {
      await restore();
    }
    for (const id of ids) await deliveryOnce(id);
    expect(receiver.received).toHaveLength(2);
  });
});

describe("saving an endpoint", () => {
  it("is rate limited per person and organisation: past the limit nothing is stored, and the refusal is audited", async () => {
    const { ctx, orgId } = await owner();
    const restore = useRateLimits(
      {
        webhookTest: { tokens: 1_000, window: "1 m" },
        webhookEndpointSave: { tokens: 2, window: "1 h" },
      },
      { audited: true },
    );
    try {
      const { endpoint } = await endpointAtReceiver(ctx);
      await endpointAtReceiver(ctx);
      const third = await endpointAtReceiver(ctx).catch((e: unknown) => e);
      expect(third).toBeInstanceOf(RateLimitedError);
      expect((third as RateLimitedError).limit).toBe("webhookEndpointSave");
      expect((third as Error).message).toMatch(/^Too many requests\. Try again in \d+ seconds\.$/);
      // A change resolves the host again: it counts against the same limit.
      const change = await updateEndpoint(ctx, endpoint.id, {
        url: receiver.url,
        description: "changed",
        events: ["message.sent"],
        enabled: true,
      }).catch((e: unknown) => e);
      expect(change).toBeInstanceOf(RateLimitedError);
      const rows = await endpointRowsOf(orgId);
      expect(rows).toHaveLength(2);
      expect(rows.map((r) => r.description)).toEqual(["", ""]);

      const refusals = () =>
        getDb().then((db) =>
          db
            .select()
            .from(auditEvents)
            .where(and(eq(auditEvents.chain, orgId), eq(auditEvents.action, "rate_limit.refused"))),
        );
      await expect.poll(async () => (await refusals()).length, { timeout: 10_000 }).toBe(1);
      expect((await refusals())[0]?.metadata).toMatchObject({
        limit: "webhookEndpointSave",
        scope: `org:${orgId}`,
      });
    } finally {
      await restore();
    }
  });
});

describe("endpoints per organisation", () => {
  it(`the ${MAX_WEBHOOK_ENDPOINTS + 1}th endpoint is refused naming the URL field, nothing is stored, and the refusal is audited`, async () => {
    const { ctx, orgId } = await owner();
    try {
      for (let i = 0; i < MAX_WEBHOOK_ENDPOINTS; i++) await endpointAtReceiver(ctx);
      const refused = await endpointAtReceiver(ctx).catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(WebhookInputError);
      expect((refused as WebhookInputError).field).toBe("url");
      expect((refused as Error).message).toBe(
        `This organisation already has ${MAX_WEBHOOK_ENDPOINTS} webhook endpoints, the most it may have: delete one to add another.`,
      );
      expect(await endpointRowsOf(orgId)).toHaveLength(MAX_WEBHOOK_ENDPOINTS);
      const audited = await (await getDb())
        .select()
        .from(auditEvents)
        .where(
          and(eq(auditEvents.orgId, orgId), eq(auditEvents.action, "webhook.endpoint_refused")),
        )
        .orderBy(auditEvents.id);
      expect(audited).toHaveLength(1);
      expect(audited[0]).toMatchObject({
        outcome: "denied",
        metadata: { reason: "endpoint_limit", limit: MAX_WEBHOOK_ENDPOINTS },
      });
    } finally {
      await (await getDb()).delete(webhookEndpoints).where(eq(webhookEndpoints.orgId, orgId));
    }
  });

  // Proves the lock only on PostgreSQL (CI runs this file there too): PGlite has one connection,
  // so its two transactions run one after the other with or without it.
  it("two saves at once for the last place: one is stored, the other refused", async () => {
    const { ctx, orgId } = await owner();
    try {
      for (let i = 0; i < MAX_WEBHOOK_ENDPOINTS - 1; i++) await endpointAtReceiver(ctx);
      const results = await Promise.allSettled([endpointAtReceiver(ctx), endpointAtReceiver(ctx)]);
      expect(results.map((r) => r.status).sort()).toEqual(["fulfilled", "rejected"]);
      const rejected = results.find((r) => r.status === "rejected");
      expect(rejected?.reason).toBeInstanceOf(WebhookInputError);
      expect(await endpointRowsOf(orgId)).toHaveLength(MAX_WEBHOOK_ENDPOINTS);
    } finally {
      await (await getDb()).delete(webhookEndpoints).where(eq(webhookEndpoints.orgId, orgId));
    }
  });
});

describe("the sweep", () => {
  it("leaves a due delivery whose job was enqueued within two minutes to it; one enqueued long ago is enqueued again", async () => {
    const { ctx, orgId } = await owner();
    const { endpoint } = await endpointAtReceiver(ctx);
    try {
      // Both long due, as in a backlog: first in the sweep's order whatever else is due.
      const longAgo = new Date("2000-01-01T00:00:00Z");
      const recentlyEnqueued = new Date(Date.now() - 30_000);
      const recent = await newDelivery(orgId, endpoint.id);
      const lost = await newDelivery(orgId, endpoint.id);
      const db = await getDb();
      await db
        .update(webhookDeliveries)
        .set({ nextAttemptAt: longAgo, enqueuedAt: recentlyEnqueued })
        .where(eq(webhookDeliveries.id, recent));
      await db
        .update(webhookDeliveries)
        .set({ nextAttemptAt: longAgo, enqueuedAt: new Date(Date.now() - 10 * 60_000) })
        .where(eq(webhookDeliveries.id, lost));

      await sweepWebhookDeliveries();
      const left = await deliveryRow(recent);
      expect(left.enqueuedAt?.getTime()).toBe(recentlyEnqueued.getTime());
      expect(left.attempts).toBe(0);
      expect((await deliveryOnce(lost)).status).toBe("delivered");
      expect((await deliveryRow(recent)).attempts).toBe(0);
      const ids = receiver.received.map((r) => r.headers["webhook-id"]);
      expect(ids.filter((id) => id === recent || id === lost)).toEqual([lost]);
    } finally {
      await (await getDb()).delete(webhookEndpoints).where(eq(webhookEndpoints.orgId, orgId));
    }
  });
});
