import { and, eq } from "drizzle-orm";
import { beforeEach, describe, expect, it } from "vitest";
import { getDb } from "@/db";
import { auditEvents, notices } from "@/db/schema";
import { readDemoInbox } from "@/lib/demo";
import { env } from "@/lib/env";
import { createMember, createOwner } from "@/lib/testing/factories";
import {
  MailboxNeedsReconnectError,
  MailboxUnavailableError,
  TokenRefreshTransientError,
} from "./errors";
import { classifyTokenError, PERMANENT_TOKEN_ERRORS } from "./providers";
import { openMailboxToken } from "./sealed";
import {
  connectDemoMailbox,
  expireAccessToken,
  insertMailboxRow,
  type Person,
  readMailbox,
  setMailbox,
} from "./testing/fixtures";
import { microsoftErrorBody } from "./testing/microsoft-stub";
import { useProviderTestbeds } from "./testing/testbeds";
import { refreshAccessToken, revokeToken } from "./token-endpoint";
import { backoffMs, getAccessToken, markMailboxUnusable, recordMailboxUse } from "./tokens";

const beds = useProviderTestbeds({ microsoft: { timeoutMs: 400 } });

beforeEach(() => {
  beds.demo.proxy.down = false;
  beds.demo.proxy.refreshDelayMs = 0;
  beds.demo.proxy.refreshScope = null;
});

const email = () => `box-${Math.random().toString(36).slice(2, 10)}@example.test`;

async function connected(person: Person) {
  const { result } = await connectDemoMailbox(person, { email: email() });
  if (result.kind !== "connected") throw new Error(`not connected: ${result.kind}`);
  return result.mailboxId;
}

async function eventsFor(mailboxId: string) {
  const db = await getDb();
  return db.select().from(auditEvents).where(eq(auditEvents.targetId, mailboxId));
}

async function actionsFor(mailboxId: string) {
  return (await eventsFor(mailboxId)).map((r) => r.action);
}

function storedRefreshToken(row: { id: string; refreshTokenEnc: string | null }) {
  return openMailboxToken(row.id, "refresh_token", row.refreshTokenEnc ?? "");
}

describe("getAccessToken against the demo provider (rotation on)", () => {
  it("returns the stored token while it is fresh, without calling the provider", async () => {
    const owner = await createOwner();
    const id = await connected(owner);
    const calls = beds.demo.proxy.refreshCalls;
    const first = await getAccessToken(id);
    const second = await getAccessToken(id);
    expect(second.accessToken).toBe(first.accessToken);
    expect(first).toMatchObject({ provider: "demo" });
    expect(first.expiresAt.getTime()).toBeGreaterThan(Date.now() + 30 * 60_000);
    expect(beds.demo.proxy.refreshCalls).toBe(calls);
  });

  it("refreshes an expired token once, saves the rotated refresh token, and the old one dies", async () => {
    const owner = await createOwner();
    const id = await connected(owner);
    const before = await readMailbox(id);
    const oldAccess = openMailboxToken(id, "access_token", before.accessTokenEnc ?? "");
    const oldRefresh = storedRefreshToken(before);
    await expireAccessToken(id);
    const calls = beds.demo.proxy.refreshCalls;

    const token = await getAccessToken(id);
    expect(beds.demo.proxy.refreshCalls).toBe(calls + 1);
    expect(token.accessToken).not.toBe(oldAccess);
    expect(await beds.demo.introspect(token.accessToken)).toMatchObject({ active: true });

    const after = await readMailbox(id);
    const newRefresh = storedRefreshToken(after);
    expect(newRefresh).not.toBe(oldRefresh);
    expect(after.lastRefreshAt?.getTime()).toBeGreaterThan(before.lastRefreshAt?.getTime() ?? 0);
    expect(after.grantedScopes).toContain("mail.send");
    expect(await actionsFor(id)).toContain("oauth.token_refreshed");

    // The provider rotated: the old refresh token is refused with invalid_grant.
    const replay = await refreshAccessToken(beds.demo.provider, oldRefresh);
    expect(replay).toMatchObject({ ok: false, status: 400, body: { error: "invalid_grant" } });
  });

  it("200 concurrent calls on an expired token cause exactly one refresh", async () => {
    const owner = await createOwner();
    const id = await connected(owner);
    await expireAccessToken(id);
    beds.demo.proxy.refreshDelayMs = 100;
    const calls = beds.demo.proxy.refreshCalls;
    const tokens = await Promise.all(Array.from({ length: 200 }, () => getAccessToken(id)));
    expect(beds.demo.proxy.refreshCalls).toBe(calls + 1);
    expect(new Set(tokens.map((t) => t.accessToken)).size).toBe(1);
    const row = await readMailbox(id);
    expect(openMailboxToken(id, "access_token", row.accessTokenEnc ?? "")).toBe(
      tokens[0]?.accessToken,
    );
  });

  it("forceRefresh: a token someone already replaced is returned as is; the rejected one is replaced", async () => {
    const owner = await createOwner();
    const id = await connected(owner);
    const current = await getAccessToken(id);
    const calls = beds.demo.proxy.refreshCalls;

    const unchanged = await getAccessToken(id, {
      forceRefresh: true,
      rejectedToken: "an-older-token",
    });
    expect(unchanged.accessToken).toBe(current.accessToken);
    expect(beds.demo.proxy.refreshCalls).toBe(calls);

    const renewed = await getAccessToken(id, {
      forceRefresh: true,
      rejectedToken: current.accessToken,
    });
    expect(renewed.accessToken).not.toBe(current.accessToken);
    expect(beds.demo.proxy.refreshCalls).toBe(calls + 1);
  });

  it("invalid_grant after the grant was revoked: needs_reconnect, notices, audit, email", async () => {
    const owner = await createOwner();
    const admin = await createMember(owner.orgId, "admin");
    await createMember(owner.orgId, "sender");
    const id = await connected(owner);
    const row = await readMailbox(id);
    expect(
      await revokeToken(beds.demo.provider, storedRefreshToken(row), "refresh_token"),
    ).toMatchObject({
      ok: true,
    });
    await expireAccessToken(id);

    const error = await getAccessToken(id).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MailboxNeedsReconnectError);
    expect(error).toMatchObject({ code: "invalid_grant", status: "needs_reconnect" });

    const after = await readMailbox(id);
    expect(after).toMatchObject({
      status: "needs_reconnect",
      lastErrorCode: "invalid_grant",
      failureCount: 1,
      accessTokenEnc: null,
      refreshTokenEnc: null,
    });
    expect(after.lastErrorCause).toMatch(/Reconnect/);

    const db = await getDb();
    const rows = await db.select().from(notices).where(eq(notices.mailboxId, id));
    expect(rows.map((n) => n.userId).sort()).toEqual([owner.user.id, admin.id].sort());
    expect(rows.every((n) => n.kind === "mailbox_needs_reconnect")).toBe(true);

    const actions = await actionsFor(id);
    expect(actions).toEqual(
      expect.arrayContaining(["oauth.refresh_failed", "mailbox.needs_reconnect"]),
    );

    const inbox = await readDemoInbox(env().dataDir);
    const mail = inbox.find((m) => m.subject === `Reconnect the mailbox ${after.address}`);
    expect(mail?.envelopeTo.sort()).toEqual([owner.user.email, admin.email].sort());
    expect(mail?.text).toContain("Reconnect the mailbox");

    // From now on the provider is not asked again.
    const calls = beds.demo.proxy.refreshCalls;
    await expect(getAccessToken(id)).rejects.toBeInstanceOf(MailboxNeedsReconnectError);
    expect(beds.demo.proxy.refreshCalls).toBe(calls);
  });

  it("a refresh answered without the mail scope: needs_reconnect naming it, no token handed out", async () => {
    const owner = await createOwner();
    const id = await connected(owner);
    await expireAccessToken(id);
    // The person took the sending permission back at the provider (Google's granular consent).
    beds.demo.proxy.refreshScope = "openid offline_access";

    const error = await getAccessToken(id).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MailboxNeedsReconnectError);
    expect(error).toMatchObject({ code: "missing_scope", status: "needs_reconnect" });

    const row = await readMailbox(id);
    expect(row).toMatchObject({ status: "needs_reconnect", lastErrorCode: "missing_scope" });
    expect(row.lastErrorCause).toContain("Send email as this demo mailbox");
    expect(row.lastErrorCause).toMatch(/[Rr]econnect/);
    expect(row.grantedScopes).not.toContain("mail.send");
    expect(row.grantedScopes).toContain("offline_access");
    // The grant still works at the provider: it stays held, so that a disconnect can revoke it.
    expect(await beds.demo.introspect(storedRefreshToken(row))).toMatchObject({ active: true });

    const events = await eventsFor(id);
    expect(events.find((e) => e.action === "oauth.refresh_failed")?.metadata).toMatchObject({
      kind: "permanent",
      code: "missing_scope",
      missing: ["mail.send"],
    });
    expect(events.map((e) => e.action)).toContain("mailbox.needs_reconnect");
    const db = await getDb();
    const rows = await db.select().from(notices).where(eq(notices.mailboxId, id));
    expect(rows.map((n) => n.userId)).toEqual([owner.user.id]);

    // Nothing is asked of the provider again until someone reconnects.
    const calls = beds.demo.proxy.refreshCalls;
    await expect(getAccessToken(id)).rejects.toBeInstanceOf(MailboxNeedsReconnectError);
    expect(beds.demo.proxy.refreshCalls).toBe(calls);

    // Reconnecting with the permission granted makes it send again.
    beds.demo.proxy.refreshScope = null;
    const again = await connectDemoMailbox(owner, { email: row.address, mailboxId: id });
    expect(again.result).toMatchObject({ kind: "connected", mailboxId: id });
    expect((await getAccessToken(id)).accessToken).toBeTruthy();
  });

  it("refuses paused and revoked mailboxes with their cause", async () => {
    const owner = await createOwner();
    const id = await connected(owner);
    await setMailbox(id, { status: "paused" });
    await expect(getAccessToken(id)).rejects.toMatchObject({
      name: "MailboxUnavailableError",
      status: "paused",
    });
    await setMailbox(id, { status: "revoked" });
    const error = await getAccessToken(id).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MailboxUnavailableError);
    expect(error).not.toBeInstanceOf(MailboxNeedsReconnectError);
  });
});

describe("getAccessToken against Microsoft's documented error bodies (stub)", () => {
  const cases = [
    { code: 65001, error: "invalid_grant", expect: /consented/ },
    { code: 50076, error: "interaction_required", expect: /multi-factor/ },
    { code: 700082, error: "invalid_grant", expect: /90 days/ },
    { code: 50173, error: "invalid_grant", expect: /password/ },
  ] as const;

  for (const c of cases) {
    it(`AADSTS${c.code} (${c.error}) -> needs_reconnect with its plain cause`, async () => {
      const owner = await createOwner();
      const id = await insertMailboxRow({ person: owner, provider: "microsoft" });
      beds.microsoft.answer = { status: 400, body: microsoftErrorBody(c.code, c.error) };
      const error = await getAccessToken(id).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(MailboxNeedsReconnectError);
      expect(error).toMatchObject({ code: `AADSTS${c.code}` });
      const row = await readMailbox(id);
      expect(row).toMatchObject({ status: "needs_reconnect", lastErrorCode: `AADSTS${c.code}` });
      expect(row.lastErrorCause).toMatch(c.expect);
      expect(await actionsFor(id)).toEqual(
        expect.arrayContaining(["oauth.refresh_failed", "mailbox.needs_reconnect"]),
      );
      const db = await getDb();
      const rows = await db
        .select()
        .from(notices)
        .where(and(eq(notices.mailboxId, id), eq(notices.userId, owner.user.id)));
      expect(rows).toHaveLength(1);
    });
  }

  it("sends the SMTP scope again on every refresh, and never a Graph scope", async () => {
    const owner = await createOwner();
    const id = await insertMailboxRow({
      person: owner,
      provider: "microsoft",
      refreshToken: "rt-ms",
    });
    beds.microsoft.answer = {
      status: 200,
      body: {
        token_type: "Bearer",
        access_token: "ms-access-2",
        expires_in: 3600,
        refresh_token: "rt-ms-rotated",
        scope: "https://outlook.office.com/SMTP.Send",
      },
    };
    const token = await getAccessToken(id);
    expect(token).toMatchObject({ accessToken: "ms-access-2", provider: "microsoft" });
    const request = beds.microsoft.requests.at(-1);
    expect(request?.get("grant_type")).toBe("refresh_token");
    expect(request?.get("refresh_token")).toBe("rt-ms");
    expect(request?.get("scope")).toBe(
      "https://outlook.office.com/SMTP.Send offline_access openid email profile",
    );
    expect(request?.get("client_id")).toBe(beds.microsoft.provider.clientId);
    // Microsoft does not revoke the old refresh token: the rotated one must be the one kept.
    expect(storedRefreshToken(await readMailbox(id))).toBe("rt-ms-rotated");
  });

  it("a refresh answered without SMTP.Send: needs_reconnect naming it", async () => {
    const owner = await createOwner();
    const id = await insertMailboxRow({ person: owner, provider: "microsoft" });
    beds.microsoft.answer = {
      status: 200,
      body: {
        token_type: "Bearer",
        access_token: "ms-access-narrow",
        expires_in: 3600,
        refresh_token: "rt-ms-narrow",
        scope: "openid email profile offline_access",
      },
    };
    const error = await getAccessToken(id).catch((e: unknown) => e);
    expect(error).toMatchObject({ name: "MailboxNeedsReconnectError", code: "missing_scope" });
    const row = await readMailbox(id);
    expect(row).toMatchObject({ status: "needs_reconnect", lastErrorCode: "missing_scope" });
    expect(row.lastErrorCause).toContain("Send email as this Microsoft 365 mailbox");
    expect(row.grantedScopes).toEqual(["openid", "email", "profile", "offline_access"]);
    // Microsoft does not revoke the old refresh token: the rotated one is what a reconnect keeps.
    expect(storedRefreshToken(row)).toBe("rt-ms-narrow");
  });

  it("a refresh with no refresh token and no offline_access: needs_reconnect naming offline access", async () => {
    const owner = await createOwner();
    const id = await insertMailboxRow({ person: owner, provider: "microsoft" });
    beds.microsoft.answer = {
      status: 200,
      body: {
        token_type: "Bearer",
        access_token: "ms-access-online",
        expires_in: 3600,
        scope: "https://outlook.office.com/SMTP.Send openid email profile",
      },
    };
    const error = await getAccessToken(id).catch((e: unknown) => e);
    expect(error).toMatchObject({ name: "MailboxNeedsReconnectError", code: "missing_scope" });
    const row = await readMailbox(id);
    expect(row).toMatchObject({ status: "needs_reconnect", lastErrorCode: "missing_scope" });
    expect(row.lastErrorCause).toContain("Keep access while you are away");
  });

  it("HTTP 500: status unchanged, backoff set, and no new request until it passes", async () => {
    const owner = await createOwner();
    const id = await insertMailboxRow({ person: owner, provider: "microsoft" });
    beds.microsoft.answer = { status: 500, body: { error: "server_error" } };
    const requests = beds.microsoft.requests.length;
    const error = await getAccessToken(id).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TokenRefreshTransientError);
    expect(error).toMatchObject({ code: "http_500" });
    const row = await readMailbox(id);
    expect(row).toMatchObject({ status: "connected", failureCount: 1, lastErrorCode: "http_500" });
    expect(row.retryAfter?.getTime()).toBeGreaterThan(Date.now() + 20_000);
    expect(row.refreshTokenEnc).not.toBeNull();

    await expect(getAccessToken(id)).rejects.toBeInstanceOf(TokenRefreshTransientError);
    expect(beds.microsoft.requests.length).toBe(requests + 1);
  });

  it("a token endpoint that hangs past the timeout: status unchanged, backoff set", async () => {
    const owner = await createOwner();
    const id = await insertMailboxRow({ person: owner, provider: "microsoft" });
    beds.microsoft.answer = "hang";
    const started = Date.now();
    const error = await getAccessToken(id).catch((e: unknown) => e);
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(error).toMatchObject({ name: "TokenRefreshTransientError", code: "timeout" });
    const row = await readMailbox(id);
    expect(row).toMatchObject({ status: "connected", failureCount: 1, lastErrorCode: "timeout" });
    expect(row.retryAfter).toBeInstanceOf(Date);
  });

  it("backs off exponentially up to 30 minutes", () => {
    expect([1, 2, 3, 4].map(backoffMs)).toEqual([30_000, 60_000, 120_000, 240_000]);
    expect(backoffMs(20)).toBe(30 * 60_000);
  });
});

describe("classifyTokenError", () => {
  it("keys off error and error_codes, never the description", () => {
    const body = {
      ...microsoftErrorBody(50173, "invalid_grant"),
      error_description: "AADSTS700082: text that says something else",
    };
    expect(classifyTokenError("microsoft", { status: 400, body })).toMatchObject({
      kind: "permanent",
      code: "AADSTS50173",
    });
    expect(
      classifyTokenError("microsoft", {
        status: 400,
        body: { error: "invalid_request", error_description: "AADSTS700082: expired" },
      }),
    ).toMatchObject({ kind: "transient" });
  });

  it("explains Google's invalid_grant with every likely cause", () => {
    const { kind, cause } = classifyTokenError("google", {
      status: 400,
      body: { error: "invalid_grant", error_description: "Token has been expired or revoked." },
    });
    expect(kind).toBe("permanent");
    for (const words of [/revoked|removed/, /6 months/, /password/, /100/, /Testing/, /7 days/]) {
      expect(cause).toMatch(words);
    }
  });

  it("treats 5xx, 429, timeouts, network errors and unknown answers as transient", () => {
    for (const response of [
      { status: 503, body: null },
      { status: 429, body: { error: "invalid_grant" } },
      { status: null, body: null, networkError: "timeout" },
      { status: null, body: null, networkError: "network" },
      { status: 400, body: { error: "something_new" } },
      { status: 400, body: "not json" },
    ]) {
      expect(classifyTokenError("google", response).kind).toBe("transient");
    }
  });

  it("lists the permanent AADSTS codes (65001, 70008, 700082, 50173, 50076, 50079)", () => {
    const codes = PERMANENT_TOKEN_ERRORS.flatMap((r) => (r.errorCode ? [r.errorCode] : []));
    expect(codes).toEqual(expect.arrayContaining([65001, 70008, 700082, 50173, 50076, 50079]));
  });
});

describe("for the sending layer", () => {
  it("markMailboxUnusable flags the mailbox once and tells the admins", async () => {
    const owner = await createOwner();
    const id = await insertMailboxRow({ person: owner, provider: "microsoft" });
    const cause = "SMTP AUTH is disabled for this mailbox; an Exchange admin must enable it.";
    const problem = { status: "admin_action_required" as const, cause, code: "smtp_5.7.139" };
    await markMailboxUnusable(id, problem);
    await markMailboxUnusable(id, problem);
    expect(await readMailbox(id)).toMatchObject({
      status: "admin_action_required",
      lastErrorCode: "smtp_5.7.139",
      lastErrorCause: cause,
    });
    const db = await getDb();
    expect(await db.select().from(notices).where(eq(notices.mailboxId, id))).toHaveLength(1);
    await expect(getAccessToken(id)).rejects.toMatchObject({ status: "admin_action_required" });
  });

  it("recordMailboxUse sets last_used_at", async () => {
    const owner = await createOwner();
    const id = await insertMailboxRow({ person: owner, provider: "microsoft" });
    await recordMailboxUse(id);
    expect((await readMailbox(id)).lastUsedAt).toBeInstanceOf(Date);
  });
});
