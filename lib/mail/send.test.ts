import { rm } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import { and, desc, eq } from "drizzle-orm";
import { SMTPServer } from "smtp-server";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { getDb } from "@/db";
import { apiKeys, auditEvents, messages } from "@/db/schema";
import type { MemberContext } from "@/lib/auth/context";
import { ensureDemoCertificate } from "@/lib/demo";
import { type DemoSmtp, startDemoSmtp } from "@/lib/demo/smtp";
import { tempDataDir } from "@/lib/demo/testing";
import { clearSwitch, setSwitch } from "@/lib/incidents/switches";
import { resetMailProviders } from "@/lib/oauth/providers";
import { openMailboxToken, sealMailboxToken } from "@/lib/oauth/sealed";
import { type Person, readMailbox, setMailbox } from "@/lib/oauth/testing/fixtures";
import { revokeToken } from "@/lib/oauth/token-endpoint";
import { keyContext, memberContext } from "@/lib/testing/context";
import { createMember, createOwner } from "@/lib/testing/factories";
import { sendOutcomeResponse } from "./http";
import type { SendOutcome } from "./outcomes";
import { sendMessage, testConnection } from "./send";
import { classifySmtpError } from "./smtp-replies";
import {
  connectMailbox,
  makeApiKey,
  type SendTestbed,
  startSendTestbed,
  useRateLimits,
} from "./testing";
import { closeAllMailboxTransports, closeMailboxTransport } from "./transport";

let bed: SendTestbed;
let restoreLimits: () => Promise<void>;
let owner: Person;
let ownerCtx: MemberContext;

beforeAll(async () => {
  bed = await startSendTestbed();
  // Every test connects its own mailbox through the real consent flow.
  restoreLimits = useRateLimits({
    oauthStart: { tokens: 1_000, window: "1 m" },
    testSend: { tokens: 1_000, window: "1 m" },
  });
  owner = await createOwner();
  ownerCtx = memberContext(owner.orgId, { id: owner.user.id, email: "owner" }, "owner");
});

afterEach(() => {
  bed.authOverride = null;
  bed.useEndpoint(bed.endpoint);
  bed.oauth.proxy.down = false;
  bed.oauth.proxy.refreshScope = null;
});

afterAll(async () => {
  closeAllMailboxTransports();
  resetMailProviders();
  await restoreLimits?.();
  await bed?.close();
});

function send(mailbox: string, extra: Partial<Parameters<typeof sendMessage>[0]> = {}) {
  return sendMessage({
    ctx: ownerCtx,
    body: {
      type: "value",
      value: { mailbox, to: ["rcpt@example.test"], subject: `Test ${Date.now()}`, text: "Hi" },
    },
    purpose: "dashboard_test",
    ...extra,
  });
}

function expectKind<K extends SendOutcome["kind"]>(outcome: SendOutcome, kind: K) {
  expect(outcome.kind).toBe(kind);
  return outcome as Extract<SendOutcome, { kind: K }>;
}

async function storedTokens(mailboxId: string) {
  const row = await readMailbox(mailboxId);
  return {
    access: openMailboxToken(mailboxId, "access_token", row.accessTokenEnc ?? ""),
    refresh: openMailboxToken(mailboxId, "refresh_token", row.refreshTokenEnc ?? ""),
  };
}

async function messageRow(id: string) {
  const db = await getDb();
  const [row] = await db.select().from(messages).where(eq(messages.id, id));
  return row;
}

describe("SMTP replies, each driven through the real SMTP server", () => {
  it("Gmail style (334 then 535) on a token the provider no longer knows: one forced refresh, retried, sent", async () => {
    const box = await connectMailbox(owner);
    // A token that looks fresh to us but that the provider never issued (or already forgot).
    await setMailbox(box, {
      accessTokenEnc: sealMailboxToken(box, "access_token", "stale-token-the-provider-forgot"),
      accessTokenExpiresAt: new Date(Date.now() + 30 * 60_000),
    });
    const refreshes = bed.oauth.proxy.refreshCalls;

    const sent = expectKind(await send(box), "sent");
    expect(bed.oauth.proxy.refreshCalls).toBe(refreshes + 1);
    const renewed = (await storedTokens(box)).access;
    expect(renewed).not.toBe("stale-token-the-provider-forgot");
    expect(await bed.oauth.introspect(renewed)).toMatchObject({ active: true });
    expect((await readMailbox(box)).status).toBe("connected");
    expect((await messageRow(sent.id))?.status).toBe("sent");
  });

  it("Gmail style with the whole grant revoked behind our back: one refresh, then needs_reconnect with the cause", async () => {
    const box = await connectMailbox(owner);
    const { refresh } = await storedTokens(box);
    await revokeToken(bed.oauth.provider, refresh, "refresh_token");
    const before = await bed.inboxCount();
    const refreshes = bed.oauth.proxy.refreshCalls;

    const failed = expectKind(await send(box), "provider_failed");
    expect(failed.failure).toBe("reconnect");
    expect(failed.cause).toMatch(/reconnect/i);
    expect(bed.oauth.proxy.refreshCalls).toBe(refreshes + 1);
    expect(await bed.inboxCount()).toBe(before);
    const row = await readMailbox(box);
    expect(row.status).toBe("needs_reconnect");
    expect(row.lastErrorCause).toMatch(/reconnect/i);
    expect((await messageRow(failed.id ?? ""))?.status).toBe("failed");

    // The next send is refused before any SMTP or token traffic.
    const again = expectKind(await send(box), "conflict");
    expect(again.cause).toBe(row.lastErrorCause);
    expect(bed.oauth.proxy.refreshCalls).toBe(refreshes + 1);
    expect(sendOutcomeResponse(again).status).toBe(409);
  });

  it("a refresh that comes back without the mail scope: refused before AUTH, nothing sent, needs_reconnect naming it", async () => {
    const box = await connectMailbox(owner);
    await setMailbox(box, { accessTokenExpiresAt: new Date(Date.now() - 60_000) });
    // The person took the sending permission back at the provider (Google's granular consent).
    bed.oauth.proxy.refreshScope = "openid offline_access";
    let authCalls = 0;
    bed.authOverride = () => {
      authCalls++;
      return null;
    };
    const before = await bed.inboxCount();

    // Found before any row is written: a refusal naming the state, not a failed message.
    const refused = expectKind(await send(box), "conflict");
    expect(refused.mailboxStatus).toBe("needs_reconnect");
    expect(refused.cause).toContain("Send email as this demo mailbox");
    expect(authCalls).toBe(0);
    expect(await bed.inboxCount()).toBe(before);
    expect(await readMailbox(box)).toMatchObject({
      status: "needs_reconnect",
      lastErrorCode: "missing_scope",
    });
  });

  it("535 5.7.8 after a fresh token (the grant works, SMTP refuses it): needs_reconnect", async () => {
    const box = await connectMailbox(owner);
    bed.authOverride = () => ({ code: 535, message: "5.7.8 Username and Password not accepted" });
    const failed = expectKind(await send(box), "provider_failed");
    expect(failed).toMatchObject({ failure: "reconnect", code: "smtp_535_5.7.8" });
    expect(failed.smtpResponse).toMatch(/^535 5\.7\.8/);
    const row = await readMailbox(box);
    expect(row).toMatchObject({ status: "needs_reconnect", lastErrorCode: "smtp_535_5.7.8" });
    const db = await getDb();
    const events = await db.select().from(auditEvents).where(eq(auditEvents.targetId, box));
    expect(events.map((e) => e.action)).toContain("mailbox.needs_reconnect");
  });

  it("a reply quoting an address reaches the audit log without it; the message row keeps it for erasure to rewrite", async () => {
    const box = await connectMailbox(owner);
    const quoted = `quoted-${Date.now()}@example.test`;
    bed.authOverride = () => ({ code: 535, message: `5.7.8 Credentials rejected for <${quoted}>` });
    const failed = expectKind(await send(box), "provider_failed");
    const db = await getDb();
    const [event] = await db
      .select({ metadata: auditEvents.metadata })
      .from(auditEvents)
      .where(
        and(eq(auditEvents.targetId, failed.id ?? ""), eq(auditEvents.action, "message.failed")),
      );
    expect(event?.metadata.smtpResponse).toMatch(
      /^535 5\.7\.8 Credentials rejected for <\[address\]>/,
    );
    expect(JSON.stringify(event)).not.toContain(quoted);
    const [row] = await db
      .select()
      .from(messages)
      .where(eq(messages.id, failed.id ?? ""));
    expect(row?.smtpResponse).toContain(quoted);
  });

  it("Microsoft 535 5.7.139: admin_action_required with the Set-CASMailbox instruction, no consent loop", async () => {
    const box = await connectMailbox(owner);
    const address = (await readMailbox(box)).address;
    let authCalls = 0;
    bed.authOverride = () => {
      authCalls++;
      return {
        code: 535,
        message:
          "5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Mailbox.",
      };
    };
    const refreshes = bed.oauth.proxy.refreshCalls;
    const failed = expectKind(await send(box), "provider_failed");
    expect(failed.failure).toBe("admin_action");
    expect(failed.smtpResponse).toMatch(/^535 5\.7\.139/);
    expect(failed.cause).toContain("Set-CASMailbox");
    expect(authCalls).toBe(1);
    expect(bed.oauth.proxy.refreshCalls).toBe(refreshes);

    const row = await readMailbox(box);
    expect(row.status).toBe("admin_action_required");
    expect(row.lastErrorCause).toContain(`Set-CASMailbox -Identity ${address}`);
    expect(row.lastErrorCause).toMatch(/Security Defaults/);
    expect(row.refreshTokenEnc).not.toBeNull();
    // The event's metadata is chained, out of erasure's reach: the instruction without the address.
    const [event] = await (await getDb())
      .select()
      .from(auditEvents)
      .where(
        and(eq(auditEvents.targetId, box), eq(auditEvents.action, "mailbox.admin_action_required")),
      );
    expect(event?.metadata.cause).toContain("Set-CASMailbox -Identity [address]");
    expect(JSON.stringify(event?.metadata).toLowerCase()).not.toContain(address.toLowerCase());

    const again = expectKind(await send(box), "conflict");
    expect(again.cause).toContain("Set-CASMailbox");
    expect(sendOutcomeResponse(again).status).toBe(409);
    expect(authCalls).toBe(1);
    expect(bed.oauth.proxy.refreshCalls).toBe(refreshes);
  });

  it("Microsoft 535 5.7.3: one fresh token first, then admin_action_required", async () => {
    const box = await connectMailbox(owner);
    let authCalls = 0;
    bed.authOverride = () => {
      authCalls++;
      return { code: 535, message: "5.7.3 Authentication unsuccessful" };
    };
    const refreshes = bed.oauth.proxy.refreshCalls;
    const failed = expectKind(await send(box), "provider_failed");
    expect(failed.failure).toBe("admin_action");
    expect(authCalls).toBe(2);
    expect(bed.oauth.proxy.refreshCalls).toBe(refreshes + 1);
    expect((await readMailbox(box)).status).toBe("admin_action_required");
  });

  it("535 5.7.3 and then a forced refresh the provider refuses: the message row keeps the provider's code (invalid_grant)", async () => {
    const box = await connectMailbox(owner);
    const { refresh } = await storedTokens(box);
    bed.authOverride = () => ({ code: 535, message: "5.7.3 Authentication unsuccessful" });
    await revokeToken(bed.oauth.provider, refresh, "refresh_token");
    const before = await bed.inboxCount();

    const failed = expectKind(await send(box), "provider_failed");
    expect(failed.failure).toBe("reconnect");
    expect(failed.code).toBe("invalid_grant");
    expect(await bed.inboxCount()).toBe(before);
    expect((await messageRow(failed.id ?? ""))?.errorCode).toBe("invalid_grant");
    const mailbox = await readMailbox(box);
    expect(mailbox.status).toBe("needs_reconnect");
    expect(mailbox.lastErrorCode).toBe("invalid_grant");
  });

  it("454: transient, retried with backoff inside the send, status unchanged", async () => {
    const box = await connectMailbox(owner);
    let authCalls = 0;
    bed.authOverride = () =>
      ++authCalls <= 2 ? { code: 454, message: "4.7.0 Temporary authentication failure" } : null;
    const started = Date.now();
    const sent = expectKind(await send(box), "sent");
    expect(authCalls).toBe(3);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1_200);
    expect((await messageRow(sent.id))?.status).toBe("sent");
    expect((await readMailbox(box)).status).toBe("connected");
  });

  it("a pause turned on while a send waits to retry a 454 stops it: nothing sent, the row says paused", async () => {
    const box = await connectMailbox(owner);
    const db = await getDb();
    const scope = { type: "organization" as const, orgId: owner.orgId };
    let authCalls = 0;
    // The first AUTH answers 454 once the pause is committed: the send is past its checks.
    bed.authOverride = async () => {
      if (++authCalls > 1) return null;
      await setSwitch({ db, kind: "pause_sending", scope, reason: "incident 7", ctx: ownerCtx });
      return { code: 454, message: "4.7.0 Temporary authentication failure" };
    };
    const before = await bed.inboxCount();
    try {
      const paused = expectKind(await send(box), "paused");
      expect(paused.cause).toMatch(/incident 7/);
      expect(authCalls).toBe(1);
      expect(await bed.inboxCount()).toBe(before);
      const [row] = await db
        .select()
        .from(messages)
        .where(and(eq(messages.mailboxId, box), eq(messages.orgId, owner.orgId)))
        .orderBy(desc(messages.createdAt))
        .limit(1);
      expect(row).toMatchObject({ status: "failed", errorCode: "paused" });
    } finally {
      await clearSwitch({ db, kind: "pause_sending", scope, ctx: ownerCtx });
    }
  });

  it("454 every time: retried with growing pauses until the send's deadline, then reported; mailbox still connected", async () => {
    const box = await connectMailbox(owner);
    let authCalls = 0;
    bed.authOverride = () => {
      authCalls++;
      return { code: 454, message: "4.7.0 Temporary authentication failure" };
    };
    // Pauses of 250 ms and 1 s fit in 3 s; the next one (2 s) would not.
    const failed = expectKind(
      await send(box, { deadlineAt: Date.now() + 3_000 }),
      "provider_failed",
    );
    expect(failed).toMatchObject({ failure: "transient", code: "smtp_454" });
    expect(authCalls).toBe(3);
    const response = sendOutcomeResponse(failed);
    expect(response.status).toBe(502);
    expect(response.headers.get("retry-after")).toBe("60");
    expect((await readMailbox(box)).status).toBe("connected");
  });

  it("an untrusted certificate is refused and explained; no token is offered", async () => {
    const box = await connectMailbox(owner);
    const otherDir = await tempDataDir();
    let authCalls = 0;
    const impostor = await startDemoSmtp({
      port: 0,
      dataDir: otherDir,
      tls: await ensureDemoCertificate(otherDir),
      introspect: bed.oauth.introspect,
      authOverride: () => {
        authCalls++;
        return null;
      },
    });
    try {
      bed.useEndpoint({ ...bed.endpoint, port: impostor.port });
      const failed = expectKind(await send(box), "provider_failed");
      expect(failed.failure).toBe("tls");
      expect(failed.cause).toMatch(/certificate could not be verified/);
      expect(authCalls).toBe(0);
      expect((await readMailbox(box)).status).toBe("connected");
    } finally {
      await impostor.close();
      await rm(otherDir, { recursive: true, force: true });
    }
  });

  it("a STARTTLS server that does not offer STARTTLS is refused (requireTLS)", async () => {
    const box = await connectMailbox(owner);
    const plain = await startPlainSmtp();
    try {
      bed.useEndpoint({
        ...bed.endpoint,
        host: "localhost",
        port: plain.port,
        secure: false,
        requireTLS: true,
        ca: bed.ca,
      });
      const failed = expectKind(await send(box), "provider_failed");
      expect(failed.failure).toBe("tls");
      expect(failed.cause).toMatch(/STARTTLS/);
      expect(plain.authAttempts).toBe(0);
      expect(plain.messages).toBe(0);
    } finally {
      await plain.close();
    }
  });

  it("STARTTLS mode (Microsoft-like 587) works when the server offers it", async () => {
    const box = await connectMailbox(owner);
    const { key, cert } = await ensureDemoCertificate(bed.dataDir);
    const starttlsDir = await tempDataDir();
    const starttls: DemoSmtp = await startDemoSmtp({
      port: 0,
      dataDir: starttlsDir,
      tls: { key, cert },
      mode: "starttls",
      introspect: bed.oauth.introspect,
    });
    try {
      bed.useEndpoint({
        ...bed.endpoint,
        host: "localhost",
        port: starttls.port,
        secure: false,
        requireTLS: true,
        ca: bed.ca,
      });
      expectKind(await send(box), "sent");
    } finally {
      // The pool keeps its connection open; the server waits for it before closing.
      closeMailboxTransport(box);
      await starttls.close();
      await rm(starttlsDir, { recursive: true, force: true });
    }
  });

  it("a recipient refused with 550 is a permanent rejection; mailbox unchanged", () => {
    const failure = classifySmtpError(
      Object.assign(new Error("Can't send mail - all recipients were rejected"), {
        code: "EENVELOPE",
        responseCode: 550,
        response: "550 5.1.1 <nobody@example.test>: Recipient address rejected",
        permanent: true,
      }),
    );
    expect(failure).toMatchObject({ kind: "rejected", code: "smtp_550" });
  });
});

type PlainSmtp = { port: number; authAttempts: number; messages: number; close(): Promise<void> };

/** A plaintext SMTP server that neither advertises nor accepts STARTTLS. */
async function startPlainSmtp(): Promise<PlainSmtp> {
  const state = { authAttempts: 0, messages: 0 };
  const server = new SMTPServer({
    secure: false,
    hideSTARTTLS: true,
    disabledCommands: ["STARTTLS"],
    authMethods: ["XOAUTH2"],
    allowInsecureAuth: true,
    logger: false,
    onAuth: (_auth, _session, callback) => {
      state.authAttempts++;
      callback(null, { user: "x" });
    },
    onData: (stream, _session, callback) => {
      state.messages++;
      stream.resume();
      stream.on("end", () => callback());
    },
  });
  server.on("error", () => {});
  const port = await new Promise<number>((resolve) =>
    server.listen(0, "127.0.0.1", () => resolve((server.server.address() as AddressInfo).port)),
  );
  return {
    port,
    get authAttempts() {
      return state.authAttempts;
    },
    get messages() {
      return state.messages;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

describe("dashboard test sends and connection tests go through the same chokepoint", () => {
  it("a sender's test message arrives; a compliance officer is refused", async () => {
    const box = await connectMailbox(owner);
    const sender = await createMember(owner.orgId, "sender");
    const before = await bed.inboxCount();
    const sent = await send(box, {
      ctx: memberContext(owner.orgId, { id: sender.id, email: "sender" }, "sender"),
    });
    expect(sent.kind).toBe("sent");
    expect(await bed.inboxCount()).toBe(before + 1);

    const officer = await createMember(owner.orgId, "compliance");
    const refused = await send(box, {
      ctx: memberContext(owner.orgId, officer, "compliance"),
    });
    expect(refused.kind).toBe("forbidden");
    expect(await bed.inboxCount()).toBe(before + 1);
  });

  it("testConnection: TLS + AUTH + QUIT, no DATA, audited", async () => {
    const box = await connectMailbox(owner);
    const before = await bed.inboxCount();
    const result = await testConnection({ ctx: ownerCtx, mailboxId: box });
    expect(result.kind).toBe("connected");
    expect(await bed.inboxCount()).toBe(before);
    const db = await getDb();
    const events = await db.select().from(auditEvents).where(eq(auditEvents.targetId, box));
    expect(events.find((e) => e.action === "mailbox.connection_tested")).toMatchObject({
      outcome: "success",
    });
  });

  it("testConnection reports a refused AUTH with the admin instructions", async () => {
    const box = await connectMailbox(owner);
    bed.authOverride = () => ({
      code: 535,
      message: "5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled",
    });
    const result = await testConnection({ ctx: ownerCtx, mailboxId: box });
    expect(result).toMatchObject({ kind: "provider_failed", failure: "admin_action" });
    expect((await readMailbox(box)).status).toBe("admin_action_required");
  });

  it("an API key revoked after the route verified it is refused before anything is sent", async () => {
    const box = await connectMailbox(owner);
    const { key } = await makeApiKey(owner);
    const ctx = keyContext(owner.orgId, key);
    expect((await send(box, { ctx, purpose: "api" })).kind).toBe("sent");
    const db = await getDb();
    await db.update(apiKeys).set({ revokedAt: new Date() }).where(eq(apiKeys.id, key.id));
    const before = await bed.inboxCount();
    const refused = await send(box, { ctx, purpose: "api" });
    expect(refused.kind).toBe("unauthorized");
    expect(sendOutcomeResponse(refused).status).toBe(401);
    expect(await bed.inboxCount()).toBe(before);
    // Also when the mailbox named does not exist: the key is judged first.
    expect((await send("no-such-mailbox", { ctx, purpose: "api" })).kind).toBe("unauthorized");
  });

  it("audits a key's refused mailbox and its sends while paused, once a minute per key and reason, with the count", async () => {
    // An organisation of its own: the pause below must not show in other tests' counts.
    const prober = await createOwner();
    const proberCtx = memberContext(prober.orgId, prober.user, "owner");
    const allowed = await connectMailbox(prober);
    const other = await connectMailbox(prober);
    const { key } = await makeApiKey(prober);
    const db = await getDb();
    await db
      .update(apiKeys)
      .set({ allowedMailboxIds: [allowed] })
      .where(eq(apiKeys.id, key.id));
    const ctx = keyContext(prober.orgId, { ...key, allowedMailboxIds: [allowed] });
    const events = async (action: "access.denied" | "message.refused") =>
      db
        .select({ target: auditEvents.targetId, metadata: auditEvents.metadata })
        .from(auditEvents)
        .where(and(eq(auditEvents.actorId, key.id), eq(auditEvents.action, action)));
    for (let i = 0; i < 5; i++) {
      expect((await send(other, { ctx, purpose: "api" })).kind).toBe("forbidden");
    }
    expect(await events("access.denied")).toEqual([
      {
        target: other,
        metadata: expect.objectContaining({
          reason: "mailbox_not_allowed_for_key",
          suppressedBefore: 0,
        }),
      },
    ]);

    const scope = { type: "organization" as const, orgId: prober.orgId };
    await setSwitch({ db, kind: "pause_sending", scope, reason: "drill", ctx: proberCtx });
    try {
      for (let i = 0; i < 5; i++) {
        expect((await send(allowed, { ctx, purpose: "api" })).kind).toBe("paused");
      }
    } finally {
      await clearSwitch({ db, kind: "pause_sending", scope, ctx: proberCtx });
    }
    expect(await events("message.refused")).toEqual([
      { target: null, metadata: expect.objectContaining({ reason: "sending_paused" }) },
    ]);
  });

  it("a global pause blocks API sends, dashboard test sends and connection tests alike", async () => {
    const box = await connectMailbox(owner);
    const { key } = await makeApiKey(owner);
    const db = await getDb();
    const ctx = ownerCtx;
    const scope = { type: "global" as const };
    await setSwitch({ db, kind: "pause_sending", scope, reason: "drill", ctx });
    try {
      const before = await bed.inboxCount();
      expect((await send(box)).kind).toBe("paused");
      expect((await send(box, { ctx: keyContext(owner.orgId, key), purpose: "api" })).kind).toBe(
        "paused",
      );
      const probe = await testConnection({ ctx: ownerCtx, mailboxId: box });
      expect(probe.kind).toBe("paused");
      expect(await bed.inboxCount()).toBe(before);
      const refusals = await db
        .select({ metadata: auditEvents.metadata, outcome: auditEvents.outcome })
        .from(auditEvents)
        .where(and(eq(auditEvents.orgId, owner.orgId), eq(auditEvents.action, "message.refused")));
      const paused = refusals.filter((r) => r.metadata.reason === "sending_paused");
      expect(paused.length).toBeGreaterThanOrEqual(3);
      expect(paused.every((r) => r.outcome === "denied" && r.metadata.scope === "global")).toBe(
        true,
      );
    } finally {
      await clearSwitch({ db, kind: "pause_sending", scope, ctx });
    }
    expect((await send(box)).kind).toBe("sent");
    const changes = await db
      .select()
      .from(auditEvents)
      .where(eq(auditEvents.action, "switch.changed"));
    expect(changes.length).toBeGreaterThanOrEqual(2);
  });

  it("an organisation pause blocks only that organisation", async () => {
    const box = await connectMailbox(owner);
    const other = await createOwner("other");
    const theirBox = await connectMailbox(other);
    const db = await getDb();
    const ctx = ownerCtx;
    const scope = { type: "organization" as const, orgId: owner.orgId };
    await setSwitch({ db, kind: "pause_sending", scope, reason: "org drill", ctx });
    try {
      expect((await send(box)).kind).toBe("paused");
      const probe = await testConnection({ ctx: ownerCtx, mailboxId: box });
      expect(probe.kind).toBe("paused");
      const theirs = await sendMessage({
        ctx: memberContext(other.orgId, other.user, "owner"),
        body: { type: "value", value: { mailbox: theirBox, to: ["a@example.test"], text: "x" } },
        purpose: "dashboard_test",
      });
      expect(theirs.kind).toBe("sent");
    } finally {
      await clearSwitch({ db, kind: "pause_sending", scope, ctx });
    }
  });
});
