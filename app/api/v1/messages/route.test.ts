import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import path from "node:path";
import { and, eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { getDb } from "@/db";
import { apiKeys, auditEvents, messages } from "@/db/schema";
import { CLIENT_ADDRESS_HEADER } from "@/lib/auth/client-address";
import { clearSwitch, setSwitch } from "@/lib/incidents/switches";
import { revokeApiKey } from "@/lib/mail/api-keys";
import { useReplayWaitMs } from "@/lib/mail/idempotency";
import { sendMessage } from "@/lib/mail/send";
import {
  clearOfMinuteTurn,
  connectMailbox,
  makeApiKey,
  type SendTestbed,
  sendRequest,
  startSendTestbed,
  useRateLimits,
} from "@/lib/mail/testing";
import { closeAllMailboxTransports } from "@/lib/mail/transport";
import { resetMailProviders } from "@/lib/oauth/providers";
import { openMailboxToken } from "@/lib/oauth/sealed";
import { type Person, readMailbox, setMailbox } from "@/lib/oauth/testing/fixtures";
import { keyContext, memberContext } from "@/lib/testing/context";
import { createOwner } from "@/lib/testing/factories";
import { POST } from "./route";

let bed: SendTestbed;
let owner: Person;
let mailboxId: string;
let address: string;
let token: string;

beforeAll(async () => {
  bed = await startSendTestbed();
  owner = await createOwner();
  address = `sender-${Date.now()}@example.test`;
  mailboxId = await connectMailbox(owner, address);
  token = (await makeApiKey(owner)).token;
});

afterAll(async () => {
  closeAllMailboxTransports();
  resetMailProviders();
  await bed?.close();
});

const message = (overrides: Record<string, unknown> = {}) => ({
  mailbox: mailboxId,
  to: ["rcpt@example.test"],
  subject: "Hello",
  text: "Body",
  ...overrides,
});

async function problemOf(response: Response) {
  expect(response.headers.get("content-type")).toBe("application/problem+json");
  return (await response.json()) as Record<string, unknown>;
}

async function rowsFor(orgId: string) {
  const db = await getDb();
  return db.select().from(messages).where(eq(messages.orgId, orgId));
}

describe("POST /api/v1/messages: a message that goes out", () => {
  it("arrives in the inbox, is recorded as sent and audited, and answers 201", async () => {
    const before = await bed.inboxCount();
    const subject = `Quarterly report ${Date.now()}`;
    const response = await POST(
      sendRequest(
        message({
          to: ['"Rita Recipient" <rita@example.test>'],
          cc: ["carl@example.test"],
          bcc: ["hidden@example.test"],
          subject,
        }),
        { token },
      ),
    );
    expect(response.status).toBe(201);
    const raw = await response.text();
    const body = JSON.parse(raw);
    expect(Object.keys(body).sort()).toEqual(["id", "messageId", "smtpResponse", "status"]);
    expect(body).toMatchObject({ status: "sent", messageId: expect.stringMatching(/^<.+>$/) });
    expect(body.smtpResponse).toMatch(/^250 /);

    expect(await bed.inboxCount()).toBe(before + 1);
    const arrived = (await bed.readInbox()).find((m) => m.subject === subject);
    expect(arrived).toMatchObject({
      authUser: address,
      envelopeFrom: address,
      to: ["Rita Recipient <rita@example.test>"],
      cc: ["carl@example.test"],
    });
    expect(arrived?.envelopeTo.sort()).toEqual(
      ["carl@example.test", "hidden@example.test", "rita@example.test"].sort(),
    );
    expect(arrived?.text.trim()).toBe("Body");

    const db = await getDb();
    const [row] = await db.select().from(messages).where(eq(messages.id, body.id));
    expect(row).toMatchObject({
      status: "sent",
      subject,
      recipientCount: 3,
      mailboxId,
      senderType: "api_key",
      providerMessageId: body.messageId,
    });
    expect(row?.recipients).toEqual({
      to: ['"Rita Recipient" <rita@example.test>'],
      cc: ["carl@example.test"],
      bcc: ["hidden@example.test"],
    });
    const [event] = await db
      .select()
      .from(auditEvents)
      .where(and(eq(auditEvents.targetId, body.id), eq(auditEvents.action, "message.sent")));
    expect(event).toMatchObject({ outcome: "success", actorType: "api_key" });

    // No secret anywhere in what the client sees.
    const accessToken = openMailboxToken(
      mailboxId,
      "access_token",
      (await readMailbox(mailboxId)).accessTokenEnc ?? "",
    );
    const secret = token.split("_").slice(2).join("_");
    for (const needle of [accessToken, token, secret]) {
      expect(raw).not.toContain(needle);
      expect(JSON.stringify(event)).not.toContain(needle);
    }
  });

  it("accepts the mailbox by address too", async () => {
    const response = await POST(
      sendRequest(message({ mailbox: address.toUpperCase() }), { token }),
    );
    expect(response.status).toBe(201);
  });
});

type HostileCase = {
  id: string;
  set?: Record<string, unknown>;
  unset?: string[];
  generate?: { field: string; char?: string; length?: number; count?: number; template?: string };
  raw?: string;
  contentType?: string;
  expect: number[];
};

const fixtures = JSON.parse(
  readFileSync(
    path.resolve(import.meta.dirname, "../../../../lib/mail/testdata/hostile-inputs.json"),
    "utf8",
  ),
) as { base: Record<string, unknown>; cases: HostileCase[] };

function hostileBody(c: HostileCase): string {
  if (c.raw !== undefined) return c.raw.replaceAll("{{MAILBOX}}", mailboxId);
  const body: Record<string, unknown> = { ...fixtures.base, mailbox: mailboxId };
  for (const [key, value] of Object.entries(c.set ?? {})) body[key] = value;
  for (const key of c.unset ?? []) delete body[key];
  if (c.generate) {
    const g = c.generate;
    const filler = (g.char ?? "a").repeat(g.length ?? 0);
    if (g.count !== undefined) {
      body[g.field] = Array.from({ length: g.count }, (_, i) =>
        (g.template ?? "{}").replace("{}", String(i)),
      );
    } else if (g.field === "to") {
      body.to = [(g.template ?? "{}").replace("{}", filler)];
    } else {
      body[g.field] = g.template ? g.template.replace("{}", filler) : filler;
    }
  }
  return JSON.stringify(body);
}

describe("hostile inputs (lib/mail/testdata/hostile-inputs.json) through the route", () => {
  it("has cases", () => expect(fixtures.cases.length).toBeGreaterThan(40));

  for (const c of fixtures.cases) {
    it(`${c.id}: refused with ${c.expect.join(" or ")}, nothing sent`, async () => {
      const before = await bed.inboxCount();
      const rows = (await rowsFor(owner.orgId)).length;
      const response = await POST(
        sendRequest(hostileBody(c), {
          token,
          ...(c.contentType ? { contentType: c.contentType } : {}),
        }),
      );
      expect(c.expect).toContain(response.status);
      expect(response.status).toBeLessThan(500);
      const problem = await problemOf(response);
      expect(problem.status).toBe(response.status);
      expect(await bed.inboxCount()).toBe(before);
      expect((await rowsFor(owner.orgId)).length).toBe(rows);
    });
  }
});

describe("refusals", () => {
  it("401 without a key, with a bad key, with a revoked key", async () => {
    const { key, token: revoked } = await makeApiKey(owner);
    await revokeApiKey({
      ctx: memberContext(owner.orgId, owner.user, "owner", { ip: null, userAgent: null }),
      keyId: key.id,
    });
    const forged = `${token.slice(0, -4)}AAAA`;
    for (const bearer of [null, "nonsense", forged, revoked]) {
      const response = await POST(sendRequest(message(), { token: bearer }));
      expect(response.status).toBe(401);
      expect(response.headers.get("www-authenticate")).toMatch(/^Bearer/);
      await problemOf(response);
    }
  });

  it("a key the route remembers is refused as soon as another instance revokes or restricts it", async () => {
    // Changed in the database only, as another app process would: this process's memory of
    // the key is not told, and the send must still be refused (the lookup reads the key).
    const db = await getDb();
    const { key, token: remembered } = await makeApiKey(owner);
    const ok = await POST(sendRequest(message(), { token: remembered }));
    expect(ok.status).toBe(201);
    const before = await bed.inboxCount();
    const otherBox = await connectMailbox(owner);
    await db
      .update(apiKeys)
      .set({ allowedMailboxIds: [otherBox] })
      .where(eq(apiKeys.id, key.id));
    const restricted = await POST(sendRequest(message(), { token: remembered }));
    expect(restricted.status).toBe(403);
    await db.update(apiKeys).set({ revokedAt: new Date() }).where(eq(apiKeys.id, key.id));
    // Whatever the body: with the mailbox, without one, not even JSON.
    for (const request of [
      sendRequest(message(), { token: remembered }),
      sendRequest(message({ mailbox: undefined }), { token: remembered }),
      sendRequest("{not json", { token: remembered }),
    ]) {
      const response = await POST(request);
      expect(response.status).toBe(401);
      expect(response.headers.get("www-authenticate")).toMatch(/^Bearer/);
    }
    expect(await bed.inboxCount()).toBe(before);
    const refusals = await db
      .select({ metadata: auditEvents.metadata })
      .from(auditEvents)
      .where(and(eq(auditEvents.actorId, key.id), eq(auditEvents.action, "access.denied")));
    expect(refusals.map((e) => (e.metadata as { reason?: string }).reason)).toContain(
      "key_revoked",
    );
  });

  it("401 for an expired key, audited with the reason expired", async () => {
    const { key, token: expiring } = await makeApiKey(owner);
    const db = await getDb();
    await db
      .update(apiKeys)
      .set({ expiresAt: new Date(Date.now() - 1000) })
      .where(eq(apiKeys.id, key.id));
    const response = await POST(
      sendRequest(message(), {
        token: expiring,
        // An address of its own: the sampling's window is shared through Redis between runs.
        headers: { [CLIENT_ADDRESS_HEADER]: `2001:db8:e4:${randomUUID().slice(0, 4)}::1` },
      }),
    );
    expect(response.status).toBe(401);
    expect(response.headers.get("www-authenticate")).toMatch(/^Bearer/);
    const refusals = await db
      .select()
      .from(auditEvents)
      .where(and(eq(auditEvents.targetId, key.id), eq(auditEvents.action, "api_key.refused")));
    expect(refusals.map((e) => e.metadata)).toEqual([
      expect.objectContaining({ reason: "expired" }),
    ]);
  });

  it("a key that expires after the route verified it is refused by the send path itself", async () => {
    const { key } = await makeApiKey(owner);
    const db = await getDb();
    await db
      .update(apiKeys)
      .set({ expiresAt: new Date(Date.now() - 1000) })
      .where(eq(apiKeys.id, key.id));
    const outcome = await sendMessage({
      ctx: keyContext(owner.orgId, key),
      body: { type: "value", value: message() },
      purpose: "api",
    });
    expect(outcome.kind).toBe("unauthorized");
  });

  it("403 for a key restricted to another mailbox", async () => {
    const other = await connectMailbox(owner);
    const { token: restricted } = await makeApiKey(owner, [other]);
    const response = await POST(sendRequest(message(), { token: restricted }));
    expect(response.status).toBe(403);
    expect((await problemOf(response)).detail).toMatch(/not allowed/);
    const allowed = await POST(sendRequest(message({ mailbox: other }), { token: restricted }));
    expect(allowed.status).toBe(201);
  });

  it("404 for an unknown mailbox and for another organisation's mailbox", async () => {
    const stranger = await createOwner("stranger");
    const theirs = await connectMailbox(stranger);
    for (const mailbox of ["00000000-0000-0000-0000-000000000000", theirs, "nobody@example.test"]) {
      const response = await POST(sendRequest(message({ mailbox }), { token }));
      expect(response.status).toBe(404);
      await problemOf(response);
    }
  });

  it("409 with the cause when the mailbox needs reconnecting", async () => {
    const box = await connectMailbox(owner);
    const cause = "Google says the grant was revoked. Reconnect the mailbox.";
    await setMailbox(box, { status: "needs_reconnect", lastErrorCause: cause });
    const before = await bed.inboxCount();
    const response = await POST(sendRequest(message({ mailbox: box }), { token }));
    expect(response.status).toBe(409);
    expect(await problemOf(response)).toMatchObject({
      detail: cause,
      mailboxStatus: "needs_reconnect",
    });
    expect(await bed.inboxCount()).toBe(before);
  });

  it("423 names the global pause when both are on, and a pause wins over an unknown mailbox", async () => {
    // The switches are read by the mailbox lookup's statement; without a mailbox, on their own.
    const db = await getDb();
    const ctx = memberContext(owner.orgId, owner.user, "owner");
    const scopes = [
      { type: "organization" as const, orgId: owner.orgId },
      { type: "global" as const },
    ];
    for (const scope of scopes) {
      await setSwitch({ db, kind: "pause_sending", scope, reason: `incident ${scope.type}`, ctx });
    }
    try {
      const before = await bed.inboxCount();
      const both = await POST(sendRequest(message(), { token }));
      expect(both.status).toBe(423);
      expect(await problemOf(both)).toMatchObject({ scope: "global" });
      const unknown = await POST(
        sendRequest(message({ mailbox: "nobody@example.test" }), { token }),
      );
      expect(unknown.status).toBe(423);
      expect(await bed.inboxCount()).toBe(before);
    } finally {
      for (const scope of scopes) await clearSwitch({ db, kind: "pause_sending", scope, ctx });
    }
  });

  it("423 while a global or organisation pause is on, and 423 for a paused mailbox", async () => {
    const db = await getDb();
    const ctx = memberContext(owner.orgId, owner.user, "owner");
    for (const scope of [
      { type: "global" as const },
      { type: "organization" as const, orgId: owner.orgId },
    ]) {
      await setSwitch({ db, kind: "pause_sending", scope, reason: "incident 42", ctx });
      try {
        const before = await bed.inboxCount();
        const response = await POST(sendRequest(message(), { token }));
        expect(response.status).toBe(423);
        expect((await problemOf(response)).detail).toMatch(/incident 42/);
        expect(await bed.inboxCount()).toBe(before);
      } finally {
        await clearSwitch({ db, kind: "pause_sending", scope, ctx });
      }
    }
    const box = await connectMailbox(owner);
    await setMailbox(box, { status: "paused" });
    const response = await POST(sendRequest(message({ mailbox: box }), { token }));
    expect(response.status).toBe(423);
    expect((await problemOf(response)).scope).toBe("mailbox");
    expect((await POST(sendRequest(message(), { token }))).status).toBe(201);
  });

  it("429 with Retry-After past the per-key limit, and past the per-mailbox minute limit", async () => {
    await clearOfMinuteTurn();
    const restore = useRateLimits({
      apiKey: { tokens: 2, window: "1 m" },
      sendMailboxMinuteDemo: { tokens: 3, window: "1 m" },
    });
    try {
      const { token: busy } = await makeApiKey(owner);
      const statuses: number[] = [];
      for (let i = 0; i < 3; i++)
        statuses.push((await POST(sendRequest(message(), { token: busy }))).status);
      expect(statuses).toEqual([201, 201, 429]);
      const limited = await POST(sendRequest(message(), { token: busy }));
      expect(limited.status).toBe(429);
      expect(Number(limited.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
      expect((await problemOf(limited)).limit).toBe("apiKey");

      // Two more keys, one mailbox: the mailbox's own limit (3 a minute) stops the fourth.
      const box = await connectMailbox(owner);
      const keys = [(await makeApiKey(owner)).token, (await makeApiKey(owner)).token];
      const results: number[] = [];
      for (let i = 0; i < 4; i++) {
        const response = await POST(sendRequest(message({ mailbox: box }), { token: keys[i % 2] }));
        results.push(response.status);
        if (response.status === 429) {
          expect(response.headers.get("retry-after")).toMatch(/^\d+$/);
          expect((await problemOf(response)).limit).toBe("sendMailboxMinuteDemo");
        }
      }
      expect(results).toEqual([201, 201, 201, 429]);
    } finally {
      await restore();
    }
  });
});

describe("the rate-limit store unreachable", () => {
  it("503 with Retry-After and 'temporarily unavailable', not 429; nothing sent or stored", async () => {
    // A real Redis client pointed at a port nobody listens on.
    const restore = useRateLimits({}, { redisUrl: "redis://127.0.0.1:6390" });
    try {
      const before = await bed.inboxCount();
      const rowsBefore = (await rowsFor(owner.orgId)).length;
      const response = await POST(sendRequest(message(), { token }));
      expect(response.status).toBe(503);
      expect(Number(response.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
      const problem = await problemOf(response);
      expect(problem.title).toBe("Temporarily unavailable");
      expect(String(problem.detail)).toMatch(/rate-limit store/);
      expect(await bed.inboxCount()).toBe(before);
      expect((await rowsFor(owner.orgId)).length).toBe(rowsBefore);
    } finally {
      await restore();
    }
  });
});

describe("the cheap refusals come before the body is validated", () => {
  // An html body that only sanitising can refuse: nothing is left of it once cleaned. If it
  // was sanitised, the answer would be this 400; each refusal below answers first instead.
  const { text: _text, ...noText } = message();
  const cleanedAway = (mailbox: string) => ({
    ...noText,
    mailbox,
    html: "<script>alert(1)</script>",
  });

  it("with a sendable mailbox the html is sanitised and refused: 400 naming html", async () => {
    const response = await POST(sendRequest(cleanedAway(mailboxId), { token }));
    expect(response.status).toBe(400);
    expect((await problemOf(response)).errors).toEqual([
      { field: "html", message: expect.stringMatching(/nothing left/) },
    ]);
  });

  it("404 for an unknown mailbox, 403 for a mailbox outside the key, 423 and 409 for a mailbox that cannot send", async () => {
    const restrictedTo = await connectMailbox(owner);
    const { token: restricted } = await makeApiKey(owner, [restrictedTo]);
    const paused = await connectMailbox(owner);
    await setMailbox(paused, { status: "paused" });
    const broken = await connectMailbox(owner);
    await setMailbox(broken, { status: "needs_reconnect", lastErrorCause: "Reconnect it." });
    const cases: Array<[string, string, number]> = [
      [token, "00000000-0000-0000-0000-000000000000", 404],
      [token, "nobody@example.test", 404],
      [restricted, mailboxId, 403],
      [token, paused, 423],
      [token, broken, 409],
    ];
    for (const [bearer, mailbox, status] of cases) {
      const response = await POST(sendRequest(cleanedAway(mailbox), { token: bearer }));
      expect({ mailbox, status: response.status }).toEqual({ mailbox, status });
      await problemOf(response);
    }
  });

  it("an unknown mailbox is refused before a large hostile html body is parsed", async () => {
    // 150,000 nested elements inside a <template>, whose content sanitising drops: seconds
    // of parsing before nesting was bounded, then a 400 for an empty html.
    const html = `<template>${"<b>".repeat(150_000)}`;
    for (const mailbox of ["nobody@example.test", mailboxId]) {
      const response = await POST(sendRequest({ ...noText, mailbox, html }, { token }));
      expect(response.status).toBe(mailbox === mailboxId ? 400 : 404);
    }
  });

  it("a replay still answers with the first result after the mailbox was paused", async () => {
    const box = await connectMailbox(owner);
    const key = `paused-${Date.now()}`;
    const first = await POST(
      sendRequest(message({ mailbox: box }), { token, idempotencyKey: key }),
    );
    expect(first.status).toBe(201);
    await setMailbox(box, { status: "paused" });
    const again = await POST(
      sendRequest(message({ mailbox: box }), { token, idempotencyKey: key }),
    );
    expect(again.status).toBe(200);
    expect((await again.json()).id).toBe((await first.json()).id);
    const fresh = await POST(sendRequest(message({ mailbox: box }), { token }));
    expect(fresh.status).toBe(423);
  });
});

describe("Idempotency-Key", () => {
  it("same key and body: 200 with the first result, nothing sent again", async () => {
    const key = `order-${Date.now()}`;
    const first = await POST(
      sendRequest(message({ subject: key }), { token, idempotencyKey: key }),
    );
    expect(first.status).toBe(201);
    const firstBody = await first.json();
    const before = await bed.inboxCount();
    const again = await POST(
      sendRequest(message({ subject: key }), { token, idempotencyKey: key }),
    );
    expect(again.status).toBe(200);
    expect(await again.json()).toEqual(firstBody);
    expect(await bed.inboxCount()).toBe(before);
  });

  it("same key, different body: 422 and nothing sent", async () => {
    const key = `k-${Date.now()}`;
    expect((await POST(sendRequest(message(), { token, idempotencyKey: key }))).status).toBe(201);
    const before = await bed.inboxCount();
    const response = await POST(
      sendRequest(message({ subject: "Something else" }), { token, idempotencyKey: key }),
    );
    expect(response.status).toBe(422);
    await problemOf(response);
    expect(await bed.inboxCount()).toBe(before);
  });

  it("keys are per API key: another key may use the same value", async () => {
    const key = `shared-${Date.now()}`;
    const { token: other } = await makeApiKey(owner);
    expect((await POST(sendRequest(message(), { token, idempotencyKey: key }))).status).toBe(201);
    expect((await POST(sendRequest(message(), { token: other, idempotencyKey: key }))).status).toBe(
      201,
    );
  });

  it("a malformed key is a 400", async () => {
    for (const bad of ["", "x".repeat(256), "has space", "naïve"]) {
      const response = await POST(sendRequest(message(), { token, idempotencyKey: bad }));
      expect(response.status).toBe(400);
      await problemOf(response);
    }
  });

  it("20 concurrent requests with one key deliver exactly one message", async () => {
    const key = `burst-${Date.now()}`;
    const subject = `Burst ${key}`;
    const before = await bed.inboxCount();
    const responses = await Promise.all(
      Array.from({ length: 20 }, () =>
        POST(sendRequest(message({ subject }), { token, idempotencyKey: key })),
      ),
    );
    const statuses = responses.map((r) => r.status).sort();
    expect(statuses.filter((s) => s === 201)).toHaveLength(1);
    expect(statuses.filter((s) => s === 200)).toHaveLength(19);
    const bodies = await Promise.all(responses.map((r) => r.json()));
    expect(new Set(bodies.map((b) => b.id)).size).toBe(1);
    expect(await bed.inboxCount()).toBe(before + 1);
    const arrived = (await bed.readInbox()).filter((m) => m.subject === subject);
    expect(arrived).toHaveLength(1);
    const db = await getDb();
    const rows = await db.select().from(messages).where(eq(messages.idempotencyKey, key));
    expect(rows).toHaveLength(1);
  });
});

describe("Idempotency-Key: a first request still being sent", () => {
  it("a concurrent retry gets 409 idempotency-key-in-progress with Retry-After, not mailbox-unavailable; a later retry gets the first result", async () => {
    const key = `slow-${Date.now()}`;
    const subject = `Slow ${key}`;
    // The provider says "try again later" three times: the first request retries for seconds,
    // longer than the (shortened) wait of a request that finds its key held.
    let asked = 0;
    bed.behaviour = (mailbox) => (mailbox === address && ++asked <= 2 ? "try_later_gmail" : null);
    useReplayWaitMs(100);
    try {
      const before = await bed.inboxCount();
      const responses = await Promise.all([
        POST(sendRequest(message({ subject }), { token, idempotencyKey: key })),
        POST(sendRequest(message({ subject }), { token, idempotencyKey: key })),
      ]);
      expect(responses.map((r) => r.status).sort()).toEqual([201, 409]);
      const sent = responses.find((r) => r.status === 201);
      const held = responses.find((r) => r.status === 409);
      if (!sent || !held) throw new Error("expected one 201 and one 409");
      expect(held.headers.get("retry-after")).toBe("2");
      const problem = await problemOf(held);
      expect(problem.type).toBe("https://mailwarden.dev/problems/idempotency-key-in-progress");
      expect(problem).not.toHaveProperty("mailboxStatus");
      expect(problem.detail).toMatch(/still being sent; retry later/);

      const first = await sent.json();
      const retry = await POST(sendRequest(message({ subject }), { token, idempotencyKey: key }));
      expect(retry.status).toBe(200);
      expect((await retry.json()).id).toBe(first.id);
      expect(await bed.inboxCount()).toBe(before + 1);
      expect((await bed.readInbox()).filter((m) => m.subject === subject)).toHaveLength(1);
    } finally {
      bed.behaviour = null;
      useReplayWaitMs(undefined);
    }
  });
});

describe("the request body", () => {
  it("413 past the size cap, without reading it all", async () => {
    const big = "x".repeat(21 * 1024 * 1024 + 10);
    const response = await POST(sendRequest(`{"text":"${big}"}`, { token }));
    expect(response.status).toBe(413);
    await problemOf(response);
  });

  it("400 naming the body for a body of many tiny values, before it is parsed; nothing sent or stored", async () => {
    // Under the size cap, but each `[]` is a value JSON.parse builds: seconds of CPU at 21 MB.
    const subject = `values-${Date.now()}`;
    const hostile = `{"mailbox":"${mailboxId}","to":["rcpt@example.test"],"subject":"${subject}","text":"x","x":[${"[],".repeat(200_000)}[]]}`;
    const response = await POST(sendRequest(hostile, { token }));
    expect(response.status).toBe(400);
    const problem = await problemOf(response);
    expect(JSON.stringify(problem.errors ?? problem)).toContain("body");
    expect(JSON.stringify(problem)).toContain("at most 1000 JSON values");
    const db = await getDb();
    expect(await db.select().from(messages).where(eq(messages.subject, subject))).toHaveLength(0);
    expect((await bed.readInbox()).filter((m) => m.subject === subject)).toHaveLength(0);
  });

  it("a long text full of commas and brackets is not counted as values, and is sent", async () => {
    const subject = `commas-${Date.now()}`;
    const text = `${'[],{},"['.repeat(50_000)} done`;
    const response = await POST(sendRequest(message({ subject, text }), { token }));
    expect(response.status).toBe(201);
    expect((await bed.readInbox()).filter((m) => m.subject === subject)).toHaveLength(1);
  });

  it("400 for a body that is not UTF-8", async () => {
    const response = await POST(
      new Request("http://localhost/api/v1/messages", {
        method: "POST",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        body: new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]),
      }),
    );
    expect(response.status).toBe(400);
    await problemOf(response);
  });
});
