import { and, eq } from "drizzle-orm";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { getDb } from "@/db";
import { auditEvents } from "@/db/schema";
import { freePort } from "@/lib/demo/testing";
import { auditEventsOf } from "@/lib/testing/audit";
import { memberContext } from "@/lib/testing/context";
import { createOwner } from "@/lib/testing/factories";
import { MailboxNotFoundError, MailboxUnavailableError } from "./errors";
import { buildDemoProvider, registerMailProvider } from "./providers";
import { revokeMailbox } from "./revoke";
import { openMailboxToken } from "./sealed";
import {
  connectDemoMailbox,
  expireAccessToken,
  insertMailboxRow,
  type Person,
  REQUEST,
  readMailbox,
} from "./testing/fixtures";
import { useProviderTestbeds } from "./testing/testbeds";
import { getAccessToken } from "./tokens";

const beds = useProviderTestbeds({ microsoft: true });

const email = () => `box-${Math.random().toString(36).slice(2, 10)}@example.test`;

async function connected(person: Person, address = email()) {
  const { result } = await connectDemoMailbox(person, { email: address });
  if (result.kind !== "connected") throw new Error(`not connected: ${result.kind}`);
  const row = await readMailbox(result.mailboxId);
  return {
    id: result.mailboxId,
    address,
    accessToken: openMailboxToken(row.id, "access_token", row.accessTokenEnc ?? ""),
    refreshToken: openMailboxToken(row.id, "refresh_token", row.refreshTokenEnc ?? ""),
  };
}

function revoke(person: Person, mailboxId: string) {
  return revokeMailbox({
    ctx: memberContext(person.orgId, person.user, "owner", REQUEST),
    mailboxId,
  });
}

async function revokedEvent(mailboxId: string) {
  const db = await getDb();
  const [event] = await db
    .select()
    .from(auditEvents)
    .where(and(eq(auditEvents.targetId, mailboxId), eq(auditEvents.action, "mailbox.revoked")));
  return event;
}

describe("revokeMailbox", () => {
  it("demo: revoked at the provider (introspection says inactive), tokens deleted, audited", async () => {
    const owner = await createOwner();
    const box = await connected(owner);
    expect(await beds.demo.introspect(box.accessToken)).toMatchObject({ active: true });

    const result = await revoke(owner, box.id);
    expect(result.providerResult).toBe("revoked");
    expect(result.detail).toMatch(/confirmed/);

    expect(await beds.demo.introspect(box.accessToken)).toMatchObject({ active: false });
    expect(await beds.demo.introspect(box.refreshToken)).toMatchObject({ active: false });
    expect(await readMailbox(box.id)).toMatchObject({
      status: "revoked",
      accessTokenEnc: null,
      accessTokenExpiresAt: null,
      refreshTokenEnc: null,
    });
    const event = await revokedEvent(box.id);
    expect(event).toMatchObject({ outcome: "success", actorId: owner.user.id });
    expect(event?.metadata).toMatchObject({ providerResult: "revoked", providerHttpStatus: 200 });
    expect(JSON.stringify(event)).not.toContain(box.refreshToken);
    await expect(getAccessToken(box.id)).rejects.toBeInstanceOf(MailboxUnavailableError);

    // A revoked mailbox can be connected again, as the same row.
    const again = await connectDemoMailbox(owner, { email: box.address, mailboxId: box.id });
    expect(again.url.searchParams.get("prompt")).toBe("consent");
    expect(again.result).toMatchObject({ kind: "connected", mailboxId: box.id, reconnected: true });
    expect((await getAccessToken(box.id)).accessToken).toBeTruthy();
  });

  it("provider down: tokens are deleted anyway and the person is told", async () => {
    const owner = await createOwner();
    const box = await connected(owner);
    const closedPort = await freePort();
    registerMailProvider(
      buildDemoProvider({
        issuer: beds.demo.issuer,
        clientId: beds.demo.clientId,
        clientSecret: beds.demo.clientSecret,
        smtpPort: 2465,
        revocationEndpoint: `http://127.0.0.1:${closedPort}/token/revocation`,
      }),
    );
    try {
      const result = await revoke(owner, box.id);
      expect(result.providerResult).toBe("failed");
      expect(result.detail).toMatch(/did not answer/);
      expect(result.detail).toMatch(/deleted its copy of the tokens anyway/);
    } finally {
      registerMailProvider(beds.demo.provider);
    }
    expect(await readMailbox(box.id)).toMatchObject({
      status: "revoked",
      accessTokenEnc: null,
      refreshTokenEnc: null,
    });
    const event = await revokedEvent(box.id);
    expect(event).toMatchObject({ outcome: "failure" });
    expect(event?.metadata).toMatchObject({ providerResult: "failed", providerHttpStatus: null });
    // The grant is still alive at the provider: that is why the person is told.
    expect(await beds.demo.introspect(box.refreshToken)).toMatchObject({ active: true });
  });

  it("provider answering 503: failed with the status, tokens deleted", async () => {
    const owner = await createOwner();
    const box = await connected(owner);
    beds.demo.proxy.down = true;
    try {
      const result = await revoke(owner, box.id);
      expect(result).toMatchObject({ providerResult: "failed" });
      expect(result.detail).toMatch(/HTTP 503/);
    } finally {
      beds.demo.proxy.down = false;
    }
    expect(await readMailbox(box.id)).toMatchObject({ status: "revoked", refreshTokenEnc: null });
    expect((await revokedEvent(box.id))?.metadata).toMatchObject({ providerHttpStatus: 503 });
  });

  it("microsoft: not supported, tokens deleted, the person is told where to remove consent", async () => {
    const owner = await createOwner();
    const id = await insertMailboxRow({ person: owner, provider: "microsoft" });
    const requests = beds.microsoft.requests.length;
    const result = await revoke(owner, id);
    expect(result.providerResult).toBe("not_supported");
    expect(result.detail).toContain("https://myapps.microsoft.com");
    expect(result.detail).toContain("Enterprise applications");
    expect(beds.microsoft.requests.length).toBe(requests);
    expect(await readMailbox(id)).toMatchObject({
      status: "revoked",
      accessTokenEnc: null,
      refreshTokenEnc: null,
    });
    expect((await revokedEvent(id))?.metadata).toMatchObject({ providerResult: "not_supported" });
  });

  it("cannot touch another organisation's mailbox; the attempt is in the attempter's log only", async () => {
    const owner = await createOwner();
    const stranger = await createOwner("stranger");
    const id = await insertMailboxRow({ person: owner, provider: "microsoft" });
    const before = await readMailbox(id);
    const ownerEvents = async () => (await auditEventsOf(owner.orgId)).map((e) => e.id);
    const ownerEventsBefore = await ownerEvents();
    await expect(revoke(stranger, id)).rejects.toBeInstanceOf(MailboxNotFoundError);
    expect(await readMailbox(id)).toEqual(before);
    expect(await auditEventsOf(stranger.orgId, { action: "access.denied" })).toEqual([
      expect.objectContaining({
        outcome: "denied",
        actorId: stranger.user.id,
        targetType: "mailbox",
        targetId: id,
        metadata: expect.objectContaining({
          reason: "revoke_mailbox_not_in_organization",
        }),
      }),
    ]);
    expect(await ownerEvents()).toEqual(ownerEventsBefore);
  });

  it("a made-up mailbox id is recorded by its length only", async () => {
    const stranger = await createOwner("stranger");
    const made = `<script>${"x".repeat(50)}`;
    await expect(revoke(stranger, made)).rejects.toBeInstanceOf(MailboxNotFoundError);
    const [event] = await auditEventsOf(stranger.orgId, { action: "access.denied" });
    expect(event).toMatchObject({ targetId: null, metadata: { malformedIdLength: made.length } });
    expect(JSON.stringify(event)).not.toContain("script");
  });
});

describe("revokeMailbox: where revoking ends every grant of the account (Google)", () => {
  beforeEach(() => {
    registerMailProvider({ ...beds.demo.provider, revocationEndsAccountGrants: true });
  });
  afterEach(() => {
    registerMailProvider(beds.demo.provider);
  });

  it("one organisation's disconnect leaves another's mailbox of the account working; the last one revokes", async () => {
    const ownerA = await createOwner("org-a");
    const ownerB = await createOwner("org-b");
    const address = email();
    const boxA = await connected(ownerA, address);
    const boxB = await connected(ownerB, address);
    const subjectOf = async (id: string) => (await readMailbox(id)).providerSubject;
    expect(await subjectOf(boxA.id)).toBeTruthy();
    expect(await subjectOf(boxA.id)).toBe(await subjectOf(boxB.id));

    const calls = beds.demo.proxy.revocationCalls;
    const result = await revoke(ownerA, boxA.id);
    expect(result.providerResult).toBe("kept_in_use");
    expect(result.detail).toMatch(/another mailbox connected to Mailwarden/);
    expect(result.detail).toMatch(/deleted its copy/);
    // Google would have ended organisation B's grant with this call.
    expect(beds.demo.proxy.revocationCalls).toBe(calls);
    expect(await readMailbox(boxA.id)).toMatchObject({
      status: "revoked",
      accessTokenEnc: null,
      refreshTokenEnc: null,
    });
    const event = await revokedEvent(boxA.id);
    expect(event).toMatchObject({ outcome: "success", orgId: ownerA.orgId });
    expect(event?.metadata).toMatchObject({
      providerResult: "kept_in_use",
      localCopyDeleted: true,
    });
    await expect(getAccessToken(boxA.id)).rejects.toBeInstanceOf(MailboxUnavailableError);

    // Organisation B's mailbox still refreshes and stays connected.
    expect(await beds.demo.introspect(boxB.refreshToken)).toMatchObject({ active: true });
    await expireAccessToken(boxB.id);
    const fresh = await getAccessToken(boxB.id);
    expect(await beds.demo.introspect(fresh.accessToken)).toMatchObject({ active: true });
    expect(await readMailbox(boxB.id)).toMatchObject({ status: "connected" });

    // No other row holds a token of the account any more: the grant ends at the provider.
    const rowB = await readMailbox(boxB.id);
    const refreshB = openMailboxToken(rowB.id, "refresh_token", rowB.refreshTokenEnc ?? "");
    const last = await revoke(ownerB, boxB.id);
    expect(last.providerResult).toBe("revoked");
    expect(beds.demo.proxy.revocationCalls).toBe(calls + 1);
    expect(await beds.demo.introspect(refreshB)).toMatchObject({ active: false });
    expect((await revokedEvent(boxB.id))?.metadata).toMatchObject({ providerResult: "revoked" });
  });
});
