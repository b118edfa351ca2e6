import { and, eq, sql } from "drizzle-orm";
import { afterEach, describe, expect, it } from "vitest";
import { getDb } from "@/db";
import { auditEvents, mailboxes, memberships, oauthTransactions } from "@/db/schema";
import {
  ConnectionsBlockedError,
  clearSwitch,
  type SwitchScope,
  setSwitch,
} from "@/lib/incidents/switches";
import { memberContext } from "@/lib/testing/context";
import { createOwner } from "@/lib/testing/factories";
import { registerMailProvider, resetMailProviders, subjectFromClaims } from "./providers";
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
import { revokeToken } from "./token-endpoint";

// What the callback re-checks after the person comes back from the provider: their role, the
// mailbox a reconnect was for, the account's stable subject, the mail scope and the incident
// switch. Every refusal stores nothing and leaves no token the provider issued alive.

const beds = useProviderTestbeds();

afterEach(() => {
  beds.demo.proxy.afterCodeExchange = null;
  beds.demo.directory.clear();
});

const email = (prefix = "box") =>
  `${prefix}-${Math.random().toString(36).slice(2, 10)}@example.test`;

async function callbackEvents(orgId: string) {
  const db = await getDb();
  return db
    .select()
    .from(auditEvents)
    .where(and(eq(auditEvents.orgId, orgId), eq(auditEvents.action, "oauth.callback")));
}

async function mailboxesOf(orgId: string) {
  const db = await getDb();
  return db.select().from(mailboxes).where(eq(mailboxes.orgId, orgId));
}

async function setRole(person: Person, role: "sender" | "compliance" | "admin") {
  const db = await getDb();
  await db
    .update(memberships)
    .set({ role })
    .where(and(eq(memberships.orgId, person.orgId), eq(memberships.userId, person.user.id)));
}

async function removeMember(person: Person) {
  const db = await getDb();
  await db
    .delete(memberships)
    .where(and(eq(memberships.orgId, person.orgId), eq(memberships.userId, person.user.id)));
}

/** Every token the provider issued since `from` is dead (introspection says inactive). */
async function expectIssuedTokensDead(from: number) {
  const issued = beds.demo.proxy.issued.slice(from);
  expect(issued.length).toBeGreaterThan(0);
  for (const tokens of issued) {
    expect(await beds.demo.introspect(tokens.accessToken)).toMatchObject({ active: false });
    if (tokens.refreshToken) {
      expect(await beds.demo.introspect(tokens.refreshToken)).toMatchObject({ active: false });
    }
  }
}

async function connected(person: Person, browser: Parameters<typeof connectDemoMailbox>[1]) {
  const { result, flow } = await connectDemoMailbox(person, browser);
  if (result.kind !== "connected") throw new Error(`not connected: ${JSON.stringify(result)}`);
  return { ...result, jar: flow.jar };
}

describe("callback: the person must still be allowed to connect mailboxes", () => {
  it("demoted to sender while at the provider: refused, nothing stored, no code redeemed", async () => {
    const owner = await createOwner();
    const url = await startFor(owner, "demo");
    const flow = await authorizeInBrowser(url.toString(), { email: email() });
    await setRole(owner, "sender");
    const exchangesBefore = beds.demo.proxy.codeExchanges;

    const result = await callbackFor(owner, flow.callbackUrl);
    expect(result).toMatchObject({ kind: "refused", reason: "not_permitted" });
    if (result.kind === "refused") expect(result.message).toMatch(/no longer allows/);
    expect(await mailboxesOf(owner.orgId)).toEqual([]);
    // The code was never redeemed, so the provider issued no token at all.
    expect(beds.demo.proxy.codeExchanges).toBe(exchangesBefore);
    const events = await callbackEvents(owner.orgId);
    expect(events).toEqual([
      expect.objectContaining({
        outcome: "denied",
        metadata: expect.objectContaining({ result: "refused", reason: "not_permitted" }),
      }),
    ]);
  });

  it("removed from the organisation while at the provider: refused, nothing stored", async () => {
    const owner = await createOwner();
    const url = await startFor(owner, "demo");
    const flow = await authorizeInBrowser(url.toString(), { email: email() });
    await removeMember(owner);
    expect(await callbackFor(owner, flow.callbackUrl)).toMatchObject({
      kind: "refused",
      reason: "not_permitted",
    });
    expect(await mailboxesOf(owner.orgId)).toEqual([]);
  });

  it("demoted while the code is being redeemed: refused and the issued grant revoked", async () => {
    const owner = await createOwner();
    const url = await startFor(owner, "demo");
    const flow = await authorizeInBrowser(url.toString(), { email: email() });
    const issuedBefore = beds.demo.proxy.issued.length;
    beds.demo.proxy.afterCodeExchange = () => setRole(owner, "compliance");

    expect(await callbackFor(owner, flow.callbackUrl)).toMatchObject({
      kind: "refused",
      reason: "not_permitted",
    });
    expect(await mailboxesOf(owner.orgId)).toEqual([]);
    await expectIssuedTokensDead(issuedBefore);
    const [event] = await callbackEvents(owner.orgId);
    expect(event).toMatchObject({
      outcome: "denied",
      metadata: expect.objectContaining({ reason: "not_permitted", grantWithdrawn: "revoked" }),
    });
  });

  it("an admin may still connect", async () => {
    const owner = await createOwner();
    const url = await startFor(owner, "demo");
    const flow = await authorizeInBrowser(url.toString(), { email: email() });
    await setRole(owner, "admin");
    expect((await callbackFor(owner, flow.callbackUrl)).kind).toBe("connected");
  });
});

describe("callback: a reconnect renews only the mailbox it was started for", () => {
  it("returning another connected account is refused; neither mailbox changes", async () => {
    const owner = await createOwner();
    const first = await connected(owner, { email: email("first") });
    const otherAddress = email("other");
    const other = await connected(owner, { email: otherAddress });
    const firstBefore = await readMailbox(first.mailboxId);
    const otherBefore = await readMailbox(other.mailboxId);
    const issuedBefore = beds.demo.proxy.issued.length;

    // Reconnect the first mailbox, but sign in to the other account at the provider.
    const url = await startFor(owner, "demo", first.mailboxId);
    const flow = await authorizeInBrowser(url.toString(), { email: otherAddress });
    const result = await callbackFor(owner, flow.callbackUrl);
    expect(result).toMatchObject({
      kind: "refused",
      reason: "other_account",
      mailboxId: first.mailboxId,
    });

    expect(await readMailbox(first.mailboxId)).toEqual(firstBefore);
    expect(await readMailbox(other.mailboxId)).toEqual(otherBefore);
    expect(await mailboxesOf(owner.orgId)).toHaveLength(2);
    await expectIssuedTokensDead(issuedBefore);
    const refusal = (await callbackEvents(owner.orgId)).find(
      (e) => e.metadata.reason === "other_account",
    );
    expect(refusal).toMatchObject({
      outcome: "denied",
      metadata: expect.objectContaining({ mailboxId: first.mailboxId }),
      // Addresses are personal data: kept apart from metadata, where erasure can replace them.
      personal: { returnedAddress: otherAddress },
    });
  });

  it("returning an account not connected yet is refused instead of adding a mailbox", async () => {
    const owner = await createOwner();
    const first = await connected(owner, { email: email("first") });
    const url = await startFor(owner, "demo", first.mailboxId);
    const flow = await authorizeInBrowser(url.toString(), { email: email("stranger") });
    expect(await callbackFor(owner, flow.callbackUrl)).toMatchObject({
      kind: "refused",
      reason: "other_account",
    });
    expect((await mailboxesOf(owner.orgId)).map((m) => m.id)).toEqual([first.mailboxId]);
  });

  it("a fresh connect of an account already connected renews that same mailbox", async () => {
    const owner = await createOwner();
    const address = email();
    const first = await connected(owner, { email: address });
    const again = await connected(owner, { email: address });
    expect(again).toMatchObject({ mailboxId: first.mailboxId, reconnected: true });
    expect(await mailboxesOf(owner.orgId)).toHaveLength(1);
  });
});

describe("callback: a mailbox is the provider's account (subject), not its email claim", () => {
  it("an address changed by a directory administrator updates the same mailbox", async () => {
    const owner = await createOwner();
    const account = email("account");
    const before = email("before");
    const after = email("after");
    beds.demo.directory.set(account, { email: before });
    const first = await connected(owner, { email: account });
    expect(first.address).toBe(before);

    beds.demo.directory.set(account, { email: after });
    const again = await connected(owner, { email: account, jar: first.jar });
    expect(again).toMatchObject({ mailboxId: first.mailboxId, address: after, reconnected: true });
    expect((await mailboxesOf(owner.orgId)).map((m) => [m.id, m.address])).toEqual([
      [first.mailboxId, after],
    ]);
    expect(await readMailbox(first.mailboxId)).toMatchObject({ providerSubject: account });
  });

  it("another account given a connected mailbox's address cannot take that mailbox over", async () => {
    const owner = await createOwner();
    const victimAddress = email("victim");
    const victim = await connected(owner, { email: victimAddress });
    const victimBefore = await readMailbox(victim.mailboxId);
    const issuedBefore = beds.demo.proxy.issued.length;

    // A tenant administrator sets another account's email claim to the victim's address.
    const intruder = email("intruder");
    beds.demo.directory.set(intruder, { email: victimAddress });
    const { result } = await connectDemoMailbox(owner, { email: intruder });
    expect(result).toMatchObject({ kind: "refused", reason: "address_in_use" });
    expect(await readMailbox(victim.mailboxId)).toEqual(victimBefore);
    expect(await mailboxesOf(owner.orgId)).toHaveLength(1);
    await expectIssuedTokensDead(issuedBefore);
    const refusal = (await callbackEvents(owner.orgId)).find(
      (e) => e.metadata.reason === "address_in_use",
    );
    expect(refusal?.outcome).toBe("denied");
  });

  it("a mailbox stored before subjects were recorded is adopted once, by address", async () => {
    const owner = await createOwner();
    const address = email("legacy");
    const first = await connected(owner, { email: address });
    await setMailbox(first.mailboxId, { providerSubject: null });
    const again = await connected(owner, { email: address });
    expect(again.mailboxId).toBe(first.mailboxId);
    expect(await readMailbox(first.mailboxId)).toMatchObject({ providerSubject: address });
  });

  it("Microsoft: tenant id + object id; Google and demo: sub; nothing from email", () => {
    const tid = "72F988BF-86F1-41AF-91AB-2D7CD011DB47";
    const oid = "00000000-0000-0000-66f3-3332eca7ea81";
    const claims = { tid, oid, sub: "pairwise", email: "a@contoso.example" };
    expect(subjectFromClaims({ id: "microsoft" }, claims)).toBe(
      `${tid.toLowerCase()}:${oid.toLowerCase()}`,
    );
    // Without `oid` (no profile scope) there is no stable id: the connection fails instead.
    expect(subjectFromClaims({ id: "microsoft" }, { tid, sub: "pairwise" })).toBeNull();
    expect(subjectFromClaims({ id: "google" }, { sub: "1071", email: "a@gmail.example" })).toBe(
      "1071",
    );
    expect(subjectFromClaims({ id: "demo" }, { email: "a@example.test" })).toBeNull();
  });
});

describe("callback: a grant without the mail scope is revoked, not just dropped", () => {
  it("mail scope unticked: the issued access and refresh tokens are dead at the provider", async () => {
    const owner = await createOwner();
    const issuedBefore = beds.demo.proxy.issued.length;
    const revocationsBefore = beds.demo.proxy.revocationCalls;
    const { result } = await connectDemoMailbox(owner, { email: email(), untick: ["mail.send"] });
    expect(result).toMatchObject({ kind: "missing_scope", missing: ["mail.send"] });
    expect(beds.demo.proxy.revocationCalls).toBeGreaterThan(revocationsBefore);
    await expectIssuedTokensDead(issuedBefore);
    const [event] = await callbackEvents(owner.orgId);
    expect(event?.metadata).toMatchObject({ result: "missing_scope", grantWithdrawn: "revoked" });
    expect(await mailboxesOf(owner.orgId)).toEqual([]);
  });

  it("a grant the database fails to store is revoked before the error reaches the caller", async () => {
    const owner = await createOwner();
    const address = email();
    const db = await getDb();
    // A real failure inside the storing transaction, for this address only.
    await db.execute(
      sql.raw(`create or replace function mw_test_refuse_mailbox() returns trigger as $$
        begin
          if new.address = '${address}' then raise exception 'disk full (test)'; end if;
          return new;
        end $$ language plpgsql`),
    );
    await db.execute(
      sql.raw(
        "create trigger mw_test_refuse_mailbox before insert on mailboxes for each row execute function mw_test_refuse_mailbox()",
      ),
    );
    try {
      const issuedBefore = beds.demo.proxy.issued.length;
      await expect(connectDemoMailbox(owner, { email: address })).rejects.toThrow();
      await expectIssuedTokensDead(issuedBefore);
      expect(await mailboxesOf(owner.orgId)).toEqual([]);
    } finally {
      await db.execute(sql.raw("drop trigger if exists mw_test_refuse_mailbox on mailboxes"));
      await db.execute(sql.raw("drop function if exists mw_test_refuse_mailbox()"));
    }
  });

  it("offline access unticked: the lone access token is revoked too", async () => {
    const owner = await createOwner();
    const issuedBefore = beds.demo.proxy.issued.length;
    const { result } = await connectDemoMailbox(owner, {
      email: email(),
      untick: ["offline_access"],
    });
    expect(result).toMatchObject({ kind: "missing_scope", missing: ["offline_access"] });
    await expectIssuedTokensDead(issuedBefore);
  });
});

describe("callback: providers whose revocation is broader, or missing", () => {
  afterEach(() => {
    beds.demo.proxy.beforeRevocation = null;
    resetMailProviders();
    registerMailProvider(beds.demo.provider);
  });

  /** The refresh token of a mailbox, as the provider sees it (introspection). */
  async function isGrantAlive(mailboxId: string) {
    const row = await readMailbox(mailboxId);
    const token = openMailboxToken(mailboxId, "refresh_token", row.refreshTokenEnc ?? "");
    return (await beds.demo.introspect(token)).active;
  }

  /** As Google does: the first revocation of a token of the account ends these mailboxes' grants. */
  function revocationEndsGrantsOf(mailboxIds: string[]) {
    // Straight to the provider, not through the counting proxy.
    const provider = {
      ...beds.demo.provider,
      revocationEndpoint: `${beds.demo.issuer}/token/revocation`,
    };
    beds.demo.proxy.beforeRevocation = async () => {
      beds.demo.proxy.beforeRevocation = null;
      for (const id of mailboxIds) {
        const row = await readMailbox(id);
        const token = openMailboxToken(id, "refresh_token", row.refreshTokenEnc ?? "");
        await revokeToken(provider, token, "refresh_token");
      }
    };
  }

  it("another organisation's mailbox of the account, stored before subjects were recorded, keeps its grant when a connect here is refused", async () => {
    const owner = await createOwner();
    const other = await createOwner();
    const address = email();
    const theirs = await connected(other, { email: address });
    await setMailbox(theirs.mailboxId, { providerSubject: null });
    registerMailProvider({ ...beds.demo.provider, revocationEndsAccountGrants: true });
    revocationEndsGrantsOf([theirs.mailboxId]);
    const revocationsBefore = beds.demo.proxy.revocationCalls;

    const { result } = await connectDemoMailbox(owner, { email: address, untick: ["mail.send"] });
    expect(await isGrantAlive(theirs.mailboxId)).toBe(true);
    expect(await readMailbox(theirs.mailboxId)).toMatchObject({ status: "connected" });
    expect(beds.demo.proxy.revocationCalls).toBe(revocationsBefore);
    expect(result).toMatchObject({ kind: "missing_scope", grantWithdrawn: "kept_in_use" });
    const events = await callbackEvents(owner.orgId);
    expect(events.map((e) => e.metadata)).toEqual([
      expect.objectContaining({ result: "missing_scope", grantWithdrawn: "kept_in_use" }),
    ]);
  });

  it("where revoking ends all the account's grants (Google), one a mailbox uses is kept", async () => {
    const owner = await createOwner();
    const address = email();
    const mailbox = await connected(owner, { email: address });
    registerMailProvider({ ...beds.demo.provider, revocationEndsAccountGrants: true });
    const revocationsBefore = beds.demo.proxy.revocationCalls;
    const { result } = await connectDemoMailbox(owner, { email: address, untick: ["mail.send"] });
    expect(result).toMatchObject({ kind: "missing_scope" });
    expect(beds.demo.proxy.revocationCalls).toBe(revocationsBefore);
    const events = await callbackEvents(owner.orgId);
    expect(events.map((e) => e.metadata.grantWithdrawn)).toContain("kept_in_use");
    expect(await readMailbox(mailbox.mailboxId)).toMatchObject({ status: "connected" });
  });

  it("where revoking ends all the account's grants, an unverified address's fresh grant is revoked", async () => {
    const owner = await createOwner();
    const account = email("unverified");
    beds.demo.directory.set(account, { email_verified: false });
    registerMailProvider({ ...beds.demo.provider, revocationEndsAccountGrants: true });
    const issuedBefore = beds.demo.proxy.issued.length;
    const revocationsBefore = beds.demo.proxy.revocationCalls;
    const { result } = await connectDemoMailbox(owner, { email: account });
    expect(result).toMatchObject({ kind: "failed" });
    // No mailbox anywhere uses this account, so nothing holds the provider back from revoking.
    expect(beds.demo.proxy.revocationCalls - revocationsBefore).toBe(1);
    await expectIssuedTokensDead(issuedBefore);
    const events = await callbackEvents(owner.orgId);
    expect(events.map((e) => e.metadata)).toEqual([
      expect.objectContaining({
        result: "failed",
        code: "email_not_verified",
        grantWithdrawn: "revoked",
      }),
    ]);
    expect(await mailboxesOf(owner.orgId)).toEqual([]);
  });

  it("without a revocation endpoint (Microsoft) the grant is dropped and the log says so", async () => {
    const owner = await createOwner();
    registerMailProvider({ ...beds.demo.provider, revocationEndpoint: null });
    const { result } = await connectDemoMailbox(owner, { email: email(), untick: ["mail.send"] });
    expect(result).toMatchObject({ kind: "missing_scope" });
    const [event] = await callbackEvents(owner.orgId);
    expect(event?.metadata).toMatchObject({ grantWithdrawn: "not_supported" });
  });
});

describe("callback: the block_connections switch", () => {
  async function withSwitch(person: Person, scope: SwitchScope, run: () => Promise<void>) {
    const db = await getDb();
    const ctx = memberContext(person.orgId, person.user, "owner");
    await setSwitch({ db, kind: "block_connections", scope, reason: "drill", ctx });
    try {
      await run();
    } finally {
      await clearSwitch({ db, kind: "block_connections", scope, ctx });
    }
  }

  async function transactionsOf(orgId: string) {
    const db = await getDb();
    return db.select().from(oauthTransactions).where(eq(oauthTransactions.orgId, orgId));
  }

  it("blocks a connection from starting, audited as denied", async () => {
    const owner = await createOwner();
    await withSwitch(owner, { type: "organization", orgId: owner.orgId }, async () => {
      await expect(startFor(owner, "demo")).rejects.toBeInstanceOf(ConnectionsBlockedError);
    });
    expect(await transactionsOf(owner.orgId)).toEqual([]);
    const db = await getDb();
    const started = await db
      .select()
      .from(auditEvents)
      .where(
        and(eq(auditEvents.orgId, owner.orgId), eq(auditEvents.action, "oauth.connect_started")),
      );
    expect(started).toEqual([
      expect.objectContaining({
        outcome: "denied",
        metadata: expect.objectContaining({ reason: "connections_blocked", scope: "organization" }),
      }),
    ]);
    // Lifted: connecting works again.
    expect((await connectDemoMailbox(owner, { email: email() })).result.kind).toBe("connected");
  });

  it("a global block counts for every organisation", async () => {
    const owner = await createOwner();
    await withSwitch(owner, { type: "global" }, async () => {
      await expect(startFor(owner, "demo")).rejects.toBeInstanceOf(ConnectionsBlockedError);
    });
  });

  it("a block turned on while the person is at the provider refuses the callback", async () => {
    const owner = await createOwner();
    const url = await startFor(owner, "demo");
    const flow = await authorizeInBrowser(url.toString(), { email: email() });
    const exchangesBefore = beds.demo.proxy.codeExchanges;
    await withSwitch(owner, { type: "organization", orgId: owner.orgId }, async () => {
      const result = await callbackFor(owner, flow.callbackUrl);
      expect(result).toMatchObject({ kind: "refused", reason: "connections_blocked" });
      if (result.kind === "refused") expect(result.message).toMatch(/blocked/);
    });
    expect(beds.demo.proxy.codeExchanges).toBe(exchangesBefore);
    expect(await mailboxesOf(owner.orgId)).toEqual([]);
    const events = await callbackEvents(owner.orgId);
    expect(events).toEqual([
      expect.objectContaining({
        outcome: "denied",
        metadata: expect.objectContaining({ reason: "connections_blocked" }),
      }),
    ]);
  });
  it("a block turned on while the code is being redeemed: refused and the issued grant revoked", async () => {
    const owner = await createOwner();
    const url = await startFor(owner, "demo");
    const flow = await authorizeInBrowser(url.toString(), { email: email() });
    const issuedBefore = beds.demo.proxy.issued.length;
    const db = await getDb();
    const ctx = memberContext(owner.orgId, owner.user, "owner");
    const scope = { type: "organization" as const, orgId: owner.orgId };
    beds.demo.proxy.afterCodeExchange = async () => {
      await setSwitch({ db, kind: "block_connections", scope, reason: "intruder", ctx });
    };
    try {
      expect(await callbackFor(owner, flow.callbackUrl)).toMatchObject({
        kind: "refused",
        reason: "connections_blocked",
      });
    } finally {
      await clearSwitch({ db, kind: "block_connections", scope, ctx });
    }
    expect(await mailboxesOf(owner.orgId)).toEqual([]);
    await expectIssuedTokensDead(issuedBefore);
    const [event] = await callbackEvents(owner.orgId);
    expect(event).toMatchObject({
      outcome: "denied",
      metadata: expect.objectContaining({
        reason: "connections_blocked",
        scope: "organization",
        codeRedeemed: true,
        grantWithdrawn: "revoked",
      }),
    });
  });
});
