import { and, eq } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { getDb } from "@/db";
import { auditEvents, mailboxes, notices, oauthTransactions } from "@/db/schema";
import { DecryptionError, isEncryptedValue } from "@/lib/crypto";
import { clearOfMinuteTurn, useRateLimits } from "@/lib/mail/testing";
import { RateLimitedError } from "@/lib/ratelimit/runtime";
import { auditEventsOf } from "@/lib/testing/audit";
import { createOwner } from "@/lib/testing/factories";
import { MailboxNotFoundError } from "./errors";
import { CLEARED_TOKENS } from "./grant-columns";
import {
  buildGoogleProvider,
  buildMicrosoftProvider,
  getMailProvider,
  registerMailProvider,
  resetMailProviders,
} from "./providers";
import { openMailboxToken } from "./sealed";
import { authorizeInBrowser } from "./testing/demo";
import {
  callbackFor,
  connectDemoMailbox,
  type Person,
  readMailbox,
  setMailbox,
  startFor,
} from "./testing/fixtures";
import { useProviderTestbeds } from "./testing/testbeds";
import { getAccessToken } from "./tokens";

const beds = useProviderTestbeds();

async function auditFor(orgId: string, action: string) {
  const db = await getDb();
  return db
    .select()
    .from(auditEvents)
    .where(and(eq(auditEvents.orgId, orgId), eq(auditEvents.action, action)));
}

const email = () => `box-${Math.random().toString(36).slice(2, 10)}@example.test`;

describe("connect: authorization code + PKCE against the demo provider", () => {
  it("connects a mailbox with its scopes and stores only ciphertext", async () => {
    const owner = await createOwner();
    const address = email();
    const { url, result, flow } = await connectDemoMailbox(owner, { email: address.toUpperCase() });

    expect(url.origin).toBe(beds.demo.issuer);
    expect(url.searchParams.get("code_challenge_method")).toBe("S256");
    expect(url.searchParams.get("redirect_uri")).toBe(
      "http://localhost:3000/api/oauth/demo/callback",
    );
    expect(url.searchParams.get("prompt")).toBe("consent");
    expect(url.searchParams.get("scope")).toBe("openid email offline_access mail.send");
    expect(url.searchParams.get("state")?.length).toBeGreaterThanOrEqual(43);
    expect(url.searchParams.get("nonce")?.length).toBeGreaterThanOrEqual(43);
    expect(flow.pages).toEqual(["login", "consent"]);
    expect(flow.callbackUrl.searchParams.get("iss")).toBe(beds.demo.issuer);

    expect(result).toMatchObject({ kind: "connected", address, reconnected: false });
    if (result.kind !== "connected") throw new Error("not connected");
    expect(result.scopes).toEqual(expect.arrayContaining(["mail.send", "offline_access"]));

    const row = await readMailbox(result.mailboxId);
    expect(row).toMatchObject({
      status: "connected",
      provider: "demo",
      connectedBy: owner.user.id,
    });
    expect(row.accessTokenEnc && isEncryptedValue(row.accessTokenEnc)).toBe(true);
    expect(row.refreshTokenEnc && isEncryptedValue(row.refreshTokenEnc)).toBe(true);
    const accessToken = (await getAccessToken(result.mailboxId)).accessToken;
    const refreshToken = openMailboxToken(row.id, "refresh_token", row.refreshTokenEnc ?? "");
    const rawRow = JSON.stringify(row);
    expect(rawRow).not.toContain(accessToken);
    expect(rawRow).not.toContain(refreshToken);
    expect(await beds.demo.introspect(accessToken)).toMatchObject({ active: true });

    // The PKCE verifier is ciphertext too.
    const db = await getDb();
    const [transaction] = await db
      .select()
      .from(oauthTransactions)
      .where(eq(oauthTransactions.state, url.searchParams.get("state") ?? ""));
    expect(isEncryptedValue(transaction?.codeVerifierEnc ?? "")).toBe(true);
    expect(transaction?.usedAt).toBeInstanceOf(Date);

    expect(await auditFor(owner.orgId, "oauth.connect_started")).toHaveLength(1);
    expect(await auditFor(owner.orgId, "mailbox.connected")).toHaveLength(1);
    const [callbackEvent] = await auditFor(owner.orgId, "oauth.callback");
    expect(callbackEvent).toMatchObject({ outcome: "success", targetId: row.id });
  });

  it("a token ciphertext copied into another mailbox row does not decrypt", async () => {
    const owner = await createOwner();
    const first = await connectDemoMailbox(owner, { email: email() });
    const second = await connectDemoMailbox(owner, { email: email() });
    if (first.result.kind !== "connected" || second.result.kind !== "connected") {
      throw new Error("not connected");
    }
    const sourceId = first.result.mailboxId;
    const targetId = second.result.mailboxId;
    const source = await readMailbox(sourceId);
    await setMailbox(targetId, {
      accessTokenEnc: source.accessTokenEnc,
      refreshTokenEnc: source.refreshTokenEnc,
    });
    expect(() => openMailboxToken(targetId, "refresh_token", source.refreshTokenEnc ?? "")).toThrow(
      DecryptionError,
    );
    // Moved between columns of the same row, it fails too.
    expect(() => openMailboxToken(sourceId, "access_token", source.refreshTokenEnc ?? "")).toThrow(
      DecryptionError,
    );
    await expect(getAccessToken(targetId)).rejects.toThrow(DecryptionError);
  });

  it("does not connect a mailbox when the mail scope is unticked", async () => {
    const owner = await createOwner();
    const { result } = await connectDemoMailbox(owner, { email: email(), untick: ["mail.send"] });
    expect(result).toEqual({
      kind: "missing_scope",
      missing: ["mail.send"],
      granted: expect.not.arrayContaining(["mail.send"]),
      grantWithdrawn: "revoked",
    });
    const db = await getDb();
    expect(await db.select().from(mailboxes).where(eq(mailboxes.orgId, owner.orgId))).toEqual([]);
    const [event] = await auditFor(owner.orgId, "oauth.callback");
    expect(event).toMatchObject({ outcome: "failure" });
    expect(event?.metadata).toMatchObject({ result: "missing_scope", missing: ["mail.send"] });
  });

  it("does not connect a mailbox without offline access (no refresh token)", async () => {
    const owner = await createOwner();
    const { result } = await connectDemoMailbox(owner, {
      email: email(),
      untick: ["offline_access"],
    });
    expect(result).toMatchObject({ kind: "missing_scope", missing: ["offline_access"] });
  });

  it("reconnects while holding a refresh token: no prompt=consent, same mailbox id", async () => {
    const owner = await createOwner();
    const address = email();
    const first = await connectDemoMailbox(owner, { email: address });
    if (first.result.kind !== "connected") throw new Error("not connected");
    const before = await readMailbox(first.result.mailboxId);

    const again = await connectDemoMailbox(owner, {
      email: address,
      mailboxId: first.result.mailboxId,
      jar: first.flow.jar,
    });
    expect(again.url.searchParams.has("prompt")).toBe(false);
    expect(again.url.searchParams.get("login_hint")).toBe(address);
    expect(again.result).toMatchObject({
      kind: "connected",
      mailboxId: first.result.mailboxId,
      reconnected: true,
    });
    const after = await readMailbox(first.result.mailboxId);
    expect(after.refreshTokenEnc).not.toBe(before.refreshTokenEnc);
    const db = await getDb();
    expect(await db.select().from(mailboxes).where(eq(mailboxes.orgId, owner.orgId))).toHaveLength(
      1,
    );
  });

  it("a mailbox that needed reconnecting asks for consent again and sends a recovery notice", async () => {
    const owner = await createOwner();
    const address = email();
    const first = await connectDemoMailbox(owner, { email: address });
    if (first.result.kind !== "connected") throw new Error("not connected");
    const id = first.result.mailboxId;
    await setMailbox(id, {
      status: "needs_reconnect",
      ...CLEARED_TOKENS,
      lastErrorCode: "invalid_grant",
      lastErrorCause: "revoked",
      failureCount: 3,
    });
    const again = await connectDemoMailbox(owner, { email: address, mailboxId: id });
    expect(again.url.searchParams.get("prompt")).toBe("consent");
    expect(again.result).toMatchObject({ kind: "connected", mailboxId: id, reconnected: true });
    expect(await readMailbox(id)).toMatchObject({
      status: "connected",
      lastErrorCode: null,
      lastErrorCause: null,
      failureCount: 0,
    });
    const db = await getDb();
    const rows = await db.select().from(notices).where(eq(notices.mailboxId, id));
    expect(rows).toEqual([
      expect.objectContaining({ kind: "mailbox_recovered", userId: owner.user.id }),
    ]);
  });

  it("a declined consent is reported as denied and audited", async () => {
    const owner = await createOwner();
    const url = await startFor(owner, "demo");
    const flow = await authorizeInBrowser(url.toString(), { email: email(), cancel: true });
    expect(flow.callbackUrl.searchParams.get("error")).toBe("access_denied");
    const result = await callbackFor(owner, flow.callbackUrl);
    expect(result.kind).toBe("denied");
    const [event] = await auditFor(owner.orgId, "oauth.callback");
    expect(event).toMatchObject({ outcome: "denied" });
  });
});

describe("connect: refused callbacks", () => {
  async function started(person: Person) {
    const url = await startFor(person, "demo");
    const state = url.searchParams.get("state") ?? "";
    const callback = (params: Record<string, string>) => {
      const u = new URL("http://localhost:3000/api/oauth/demo/callback");
      for (const [k, v] of Object.entries({
        code: "a-code",
        state,
        iss: beds.demo.issuer,
        ...params,
      })) {
        u.searchParams.set(k, v);
      }
      return u;
    };
    return { url, state, callback };
  }

  async function refusals(orgId: string) {
    return (await auditFor(orgId, "oauth.callback")).map((e) => e.metadata.reason);
  }

  it("refuses a replayed callback", async () => {
    const owner = await createOwner();
    const url = await startFor(owner, "demo");
    const flow = await authorizeInBrowser(url.toString(), { email: email() });
    expect((await callbackFor(owner, flow.callbackUrl)).kind).toBe("connected");
    expect(await callbackFor(owner, flow.callbackUrl)).toMatchObject({
      kind: "refused",
      reason: "replayed",
    });
    expect(await refusals(owner.orgId)).toContain("replayed");
  });

  it("refuses an unknown state", async () => {
    const owner = await createOwner();
    const { callback } = await started(owner);
    const result = await callbackFor(owner, callback({ state: "forged-state-value" }));
    expect(result).toMatchObject({ kind: "refused", reason: "unknown_state" });
    const db = await getDb();
    const events = await db
      .select()
      .from(auditEvents)
      .where(and(eq(auditEvents.action, "oauth.callback"), eq(auditEvents.actorId, owner.user.id)));
    expect(events.map((e) => e.metadata.reason)).toContain("unknown_state");
  });

  it("a signed-in caller past the callback limit writes one sampled event, not one per request", async () => {
    // Sign-up is open: without sampling, anyone signed in could grow the operators' log (each
    // event sealed inline under its lock) as fast as they can send requests.
    await clearOfMinuteTurn(20_000);
    const restore = useRateLimits({ oauthCallback: { tokens: 5, window: "1 m" } });
    try {
      const owner = await createOwner();
      const { callback } = await started(owner);
      const reasons: string[] = [];
      for (let i = 0; i < 30; i++) {
        const result = await callbackFor(owner, callback({ state: `forged-${i}` }));
        reasons.push(result.kind === "refused" ? result.reason : result.kind);
      }
      expect(reasons.slice(5).every((reason) => reason === "rate_limited")).toBe(true);
      const db = await getDb();
      const events = await db
        .select({ metadata: auditEvents.metadata })
        .from(auditEvents)
        .where(
          and(eq(auditEvents.action, "oauth.callback"), eq(auditEvents.actorId, owner.user.id)),
        )
        .orderBy(auditEvents.id);
      expect(events.map((e) => e.metadata.reason)).toEqual([
        ...Array(5).fill("unknown_state"),
        "rate_limited",
      ]);
      expect(events.at(-1)?.metadata).toMatchObject({ suppressedBefore: 0 });
    } finally {
      await restore();
    }
  });

  it("refuses an expired state", async () => {
    const owner = await createOwner();
    const { state, callback } = await started(owner);
    const db = await getDb();
    await db
      .update(oauthTransactions)
      .set({ expiresAt: new Date(Date.now() - 1000) })
      .where(eq(oauthTransactions.state, state));
    expect(await callbackFor(owner, callback({}))).toMatchObject({
      kind: "refused",
      reason: "expired",
    });
    expect(await refusals(owner.orgId)).toContain("expired");
  });

  it("refuses another person's state and leaves it usable for its owner", async () => {
    const owner = await createOwner();
    const stranger = await createOwner("stranger");
    const url = await startFor(owner, "demo");
    const flow = await authorizeInBrowser(url.toString(), { email: email() });
    expect(await callbackFor(stranger, flow.callbackUrl)).toMatchObject({
      kind: "refused",
      reason: "other_user",
    });
    expect(await callbackFor(null, flow.callbackUrl)).toMatchObject({
      kind: "refused",
      reason: "other_user",
    });
    expect(await refusals(owner.orgId)).toEqual(["other_user", "other_user"]);
    expect((await callbackFor(owner, flow.callbackUrl)).kind).toBe("connected");
  });

  it("refuses a response from the wrong issuer (mix-up) or without one", async () => {
    const owner = await createOwner();
    const { callback } = await started(owner);
    expect(
      await callbackFor(owner, callback({ iss: "https://accounts.google.com" })),
    ).toMatchObject({
      kind: "refused",
      reason: "wrong_issuer",
    });
    const second = await started(owner);
    const noIss = second.callback({});
    noIss.searchParams.delete("iss");
    expect(await callbackFor(owner, noIss)).toMatchObject({
      kind: "refused",
      reason: "wrong_issuer",
    });
    expect(await refusals(owner.orgId)).toEqual(["wrong_issuer", "wrong_issuer"]);
  });

  it("refuses a state brought back to another provider's callback", async () => {
    const owner = await createOwner();
    const { callback } = await started(owner);
    expect(await callbackFor(owner, callback({}), "google")).toMatchObject({
      kind: "refused",
      reason: "wrong_provider",
    });
    expect(await refusals(owner.orgId)).toContain("wrong_provider");
  });

  it("rate-limits connection starts per person", async () => {
    const owner = await createOwner();
    for (let i = 0; i < 10; i++) await startFor(owner, "demo");
    await expect(startFor(owner, "demo")).rejects.toBeInstanceOf(RateLimitedError);
  });
});

describe("connect: a reconnect of another organisation's mailbox", () => {
  it("is refused, audited as access.denied in the attempter's log only, and changes nothing", async () => {
    const victim = await createOwner("victim");
    const attacker = await createOwner("attacker");
    const { result } = await connectDemoMailbox(victim, { email: email() });
    if (result.kind !== "connected") throw new Error(`not connected: ${result.kind}`);
    const before = await readMailbox(result.mailboxId);
    const victimEvents = async () => (await auditEventsOf(victim.orgId)).map((e) => e.id);
    const victimEventsBefore = await victimEvents();

    await expect(startFor(attacker, "demo", result.mailboxId)).rejects.toBeInstanceOf(
      MailboxNotFoundError,
    );
    expect(await auditEventsOf(attacker.orgId, { action: "access.denied" })).toEqual([
      expect.objectContaining({
        outcome: "denied",
        actorId: attacker.user.id,
        targetType: "mailbox",
        targetId: result.mailboxId,
        metadata: expect.objectContaining({
          reason: "reconnect_mailbox_not_in_organization",
        }),
      }),
    ]);
    expect(await victimEvents()).toEqual(victimEventsBefore);
    expect(await readMailbox(result.mailboxId)).toEqual(before);
    const db = await getDb();
    const started = await db
      .select()
      .from(oauthTransactions)
      .where(eq(oauthTransactions.orgId, attacker.orgId));
    expect(started).toEqual([]);
  });
});

describe("connect: provider authorization URLs", () => {
  it("Microsoft: SMTP.Send + offline_access + openid email, never a Graph scope", async () => {
    registerMailProvider(
      buildMicrosoftProvider({ clientId: "ms-client", clientSecret: "s", tenant: "organizations" }),
    );
    try {
      const owner = await createOwner();
      const url = await startFor(owner, "microsoft");
      expect(url.origin + url.pathname).toBe(
        "https://login.microsoftonline.com/organizations/oauth2/v2.0/authorize",
      );
      const scope = url.searchParams.get("scope") ?? "";
      expect(scope).toBe(
        "https://outlook.office.com/SMTP.Send offline_access openid email profile",
      );
      expect(scope).not.toMatch(/User\.Read|graph\.microsoft\.com/i);
      expect(url.toString()).not.toMatch(/graph\.microsoft\.com|User\.Read/i);
      expect(url.searchParams.get("redirect_uri")).toBe(
        "http://localhost:3000/api/oauth/microsoft/callback",
      );
      expect(url.searchParams.has("prompt")).toBe(false);
      expect(url.searchParams.has("access_type")).toBe(false);
      expect(url.searchParams.get("code_challenge_method")).toBe("S256");
    } finally {
      resetMailProviders();
      registerMailProvider(beds.demo.provider);
    }
  });

  it("Google: offline access, incremental scopes, consent only without a refresh token", async () => {
    registerMailProvider(buildGoogleProvider({ clientId: "g-client", clientSecret: "s" }));
    try {
      const owner = await createOwner();
      const url = await startFor(owner, "google");
      expect(url.searchParams.get("scope")).toBe("openid email https://mail.google.com/");
      expect(url.searchParams.get("access_type")).toBe("offline");
      expect(url.searchParams.get("include_granted_scopes")).toBe("true");
      expect(url.searchParams.get("prompt")).toBe("consent");
      const google = getMailProvider("google");
      expect(google?.authorizationParams({ hasRefreshToken: true })).not.toHaveProperty("prompt");
    } finally {
      resetMailProviders();
      registerMailProvider(beds.demo.provider);
    }
  });
});
