import { and, eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { getDb } from "@/db";
import {
  insertOutboxRows,
  listOutboxForOrg,
  setNotificationMailbox,
} from "@/db/queries/notifications";
import { auditEvents, notices } from "@/db/schema";
import { clearSwitch, setSwitch } from "@/lib/incidents/switches";
import { revokeApiKey } from "@/lib/mail/api-keys";
import { runMailboxHealthCheck } from "@/lib/mail/health";
import { testConnection } from "@/lib/mail/send";
import {
  connectMailbox,
  makeApiKey,
  type SendTestbed,
  startSendTestbed,
  useRateLimits,
} from "@/lib/mail/testing";
import { closeAllMailboxTransports } from "@/lib/mail/transport";
import { resetMailProviders } from "@/lib/oauth/providers";
import { openMailboxToken } from "@/lib/oauth/sealed";
import { readMailbox, setMailbox } from "@/lib/oauth/testing/fixtures";
import { revokeToken } from "@/lib/oauth/token-endpoint";
import { memberContext } from "@/lib/testing/context";
import { createMember, createOwner } from "@/lib/testing/factories";
import { flushNotifications } from ".";

// The real demo provider and the real demo SMTP server: notification emails travel through
// the send chokepoint from the organisation's chosen mailbox into the demo inbox.

let bed: SendTestbed;
let restoreLimits: () => Promise<void>;

beforeAll(async () => {
  bed = await startSendTestbed();
  restoreLimits = useRateLimits({ oauthStart: { tokens: 1_000, window: "1 m" } });
});

afterAll(async () => {
  closeAllMailboxTransports();
  resetMailProviders();
  await restoreLimits?.();
  await bed?.close();
});

const HOUR = 60 * 60 * 1000;

async function orgWithSender() {
  const owner = await createOwner();
  const sender = await connectMailbox(owner);
  await setNotificationMailbox({ db: await getDb(), orgId: owner.orgId, mailboxId: sender });
  return { owner, sender };
}

async function inboxFor(address: string) {
  const inbox = await bed.readInbox();
  return inbox.filter((m) => m.envelopeTo.includes(address.toLowerCase()));
}

describe("mailbox health check", () => {
  it("finds a grant revoked at the provider behind Mailwarden's back: status, notice, email", async () => {
    const { owner, sender } = await orgWithSender();
    const victim = await connectMailbox(owner);
    const row = await readMailbox(victim);
    // Revoked at the demo provider directly, as the account's owner would at Google.
    const refresh = openMailboxToken(victim, "refresh_token", row.refreshTokenEnc ?? "");
    const access = openMailboxToken(victim, "access_token", row.accessTokenEnc ?? "");
    expect((await revokeToken(bed.oauth.provider, refresh, "refresh_token")).ok).toBe(true);
    expect((await revokeToken(bed.oauth.provider, access, "access_token")).ok).toBe(true);
    // Unused for two hours, so the check runs its connection test (the sender stays fresh).
    const twoHoursAgo = new Date(Date.now() - 2 * HOUR);
    await setMailbox(victim, { lastUsedAt: twoHoursAgo, createdAt: twoHoursAgo });

    const results = await runMailboxHealthCheck({ intervalMs: 10_000, idleMs: HOUR });
    expect(results?.find((r) => r.mailboxId === victim)?.tested).toBe("provider_failed");
    expect(results?.some((r) => r.mailboxId === sender)).toBe(false);

    const after = await readMailbox(victim);
    expect(after.status).toBe("needs_reconnect");
    const db = await getDb();
    const found = await db
      .select()
      .from(notices)
      .where(and(eq(notices.mailboxId, victim), eq(notices.kind, "mailbox_needs_reconnect")));
    expect(found.length).toBeGreaterThan(0);

    // Not before the digest window has passed; then one email, through the sender mailbox.
    // Only this organisation's: other tests' notifications may be waiting in the same database.
    const own = (flushed: Awaited<ReturnType<typeof flushNotifications>>) =>
      flushed?.filter((f) => f.orgId === owner.orgId);
    expect(own(await flushNotifications({ windowMs: 60_000 }))).toEqual([]);
    const flushed = own(await flushNotifications({ windowMs: 0 }));
    expect(flushed).toEqual([
      {
        orgId: owner.orgId,
        recipient: owner.user.email?.toLowerCase(),
        events: 1,
        outcome: "sent",
      },
    ]);
    const mail = await inboxFor(owner.user.email ?? "");
    expect(mail).toHaveLength(1);
    expect(mail[0]?.subject).toBe(`Reconnect the mailbox ${after.address}`);
    expect(mail[0]?.authUser).toBe((await readMailbox(sender)).address);
    const sent = await db
      .select()
      .from(auditEvents)
      .where(and(eq(auditEvents.orgId, owner.orgId), eq(auditEvents.action, "message.sent")));
    expect(sent.map((e) => e.actorType)).toEqual(["system"]);
  });
});

describe("notification digests", () => {
  it("three events within the window become one message", async () => {
    const { owner } = await orgWithSender();
    const db = await getDb();
    const to = [owner.user.email?.toLowerCase() ?? ""];
    for (const n of [1, 2, 3]) {
      await insertOutboxRows({
        db,
        orgId: owner.orgId,
        recipients: to,
        event: { kind: "test", title: `Event ${n}`, body: `Body ${n}` },
      });
    }
    const flushed = await flushNotifications({ windowMs: 0 });
    expect(flushed?.filter((f) => f.orgId === owner.orgId)).toEqual([
      { orgId: owner.orgId, recipient: to[0], events: 3, outcome: "sent" },
    ]);
    const mail = await inboxFor(to[0] ?? "");
    expect(mail).toHaveLength(1);
    expect(mail[0]?.subject).toMatch(/3 things happened/);
    for (const n of [1, 2, 3]) expect(mail[0]?.text).toContain(`Event ${n}`);
    // Nothing is sent twice.
    expect((await flushNotifications({ windowMs: 0 }))?.some((f) => f.orgId === owner.orgId)).toBe(
      false,
    );
  });

  it("a paused organisation gets no notification email, and the refusal is audited", async () => {
    const { owner } = await orgWithSender();
    const db = await getDb();
    const to = owner.user.email?.toLowerCase() ?? "";
    await insertOutboxRows({
      db,
      orgId: owner.orgId,
      recipients: [to],
      event: { kind: "test", title: "During a pause", body: "Should not arrive" },
    });
    const scope = { type: "organization" as const, orgId: owner.orgId };
    const ctx = memberContext(owner.orgId, owner.user, "owner");
    await setSwitch({ db, kind: "pause_sending", scope, reason: "drill", ctx });
    try {
      const flushed = await flushNotifications({ windowMs: 0 });
      expect(flushed?.find((f) => f.orgId === owner.orgId)?.outcome).toBe("paused");
    } finally {
      await clearSwitch({ db, kind: "pause_sending", scope, ctx });
    }
    expect(await inboxFor(to)).toHaveLength(0);
    const refused = await db
      .select()
      .from(auditEvents)
      .where(and(eq(auditEvents.orgId, owner.orgId), eq(auditEvents.action, "message.refused")));
    expect(refused.map((e) => [e.actorType, e.metadata])).toEqual([
      ["system", expect.objectContaining({ reason: "sending_paused" })],
    ]);
    const rows = await listOutboxForOrg({ db, orgId: owner.orgId });
    // The pause itself was an event too: it was refused with the rest; the release waits.
    expect(rows.map((r) => [r.event.kind, r.outcome])).toEqual([
      ["test", "paused"],
      ["switch_changed", "paused"],
      ["switch_changed", null],
    ]);
  });

  it("key, switch and member events reach the owners and admins", async () => {
    const { owner } = await orgWithSender();
    const admin = await createMember(owner.orgId, "admin");
    await createMember(owner.orgId, "sender");
    const db = await getDb();
    const { key } = await makeApiKey(owner);
    await revokeApiKey({ ctx: memberContext(owner.orgId, owner.user, "owner"), keyId: key.id });
    const scope = { type: "organization" as const, orgId: owner.orgId };
    await setSwitch({
      db,
      kind: "block_connections",
      scope,
      reason: "drill",
      ctx: memberContext(owner.orgId, owner.user, "owner"),
    });
    const rows = await listOutboxForOrg({ db, orgId: owner.orgId });
    const kinds = (to: string | null | undefined) =>
      rows.filter((r) => r.recipient === to?.toLowerCase()).map((r) => r.event.kind);
    const expected = ["api_key_created", "api_key_revoked", "switch_changed"];
    expect(kinds(owner.user.email)).toEqual(expected);
    expect(kinds(admin.email)).toEqual(expected);
    expect(rows).toHaveLength(6);
    const flushed = await flushNotifications({ windowMs: 0 });
    expect(flushed?.filter((f) => f.orgId === owner.orgId).map((f) => f.events)).toEqual([3, 3]);
  });

  it("without a notification mailbox nothing is queued", async () => {
    const owner = await createOwner();
    const victim = await connectMailbox(owner);
    const twoHoursAgo = new Date(Date.now() - 2 * HOUR);
    await setMailbox(victim, { lastUsedAt: twoHoursAgo, createdAt: twoHoursAgo });
    const row = await readMailbox(victim);
    const refresh = openMailboxToken(victim, "refresh_token", row.refreshTokenEnc ?? "");
    const access = openMailboxToken(victim, "access_token", row.accessTokenEnc ?? "");
    await revokeToken(bed.oauth.provider, refresh, "refresh_token");
    await revokeToken(bed.oauth.provider, access, "access_token");
    await runMailboxHealthCheck({ intervalMs: 10_000, idleMs: HOUR });
    expect((await readMailbox(victim)).status).toBe("needs_reconnect");
    expect(await listOutboxForOrg({ db: await getDb(), orgId: owner.orgId })).toEqual([]);
  });
});

describe("Retry now", () => {
  it("a mailbox waiting for an administrator is connected again once the test passes", async () => {
    const { owner, sender } = await orgWithSender();
    const box = await connectMailbox(owner);
    const ctx = memberContext(owner.orgId, owner.user, "owner");
    bed.authOverride = () => ({
      code: 535,
      message: "5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled",
    });
    try {
      expect((await testConnection({ ctx, mailboxId: box })).kind).toBe("provider_failed");
      expect((await readMailbox(box)).status).toBe("admin_action_required");
      // Still refused by the provider: the retry says so and the state stays.
      const failed = await testConnection({ ctx, mailboxId: box, isAdminRetry: true });
      expect(failed.kind).toBe("provider_failed");
      expect((await readMailbox(box)).status).toBe("admin_action_required");
    } finally {
      bed.authOverride = null;
    }
    // A plain test is still refused for a mailbox in that state; only the retry probes it.
    expect((await testConnection({ ctx, mailboxId: box })).kind).toBe("conflict");
    // The sender mailbox is connected: there is nothing to retry.
    expect((await testConnection({ ctx, mailboxId: sender, isAdminRetry: true })).kind).toBe(
      "conflict",
    );

    expect((await testConnection({ ctx, mailboxId: box, isAdminRetry: true })).kind).toBe(
      "connected",
    );
    expect((await readMailbox(box)).status).toBe("connected");
    const db = await getDb();
    const recovered = await db
      .select()
      .from(auditEvents)
      .where(and(eq(auditEvents.targetId, box), eq(auditEvents.action, "mailbox.recovered")));
    expect(recovered.map((e) => [e.actorType, e.actorId])).toEqual([["user", owner.user.id]]);
    const told = await db
      .select()
      .from(notices)
      .where(and(eq(notices.mailboxId, box), eq(notices.kind, "mailbox_recovered")));
    expect(told.length).toBeGreaterThan(0);
    const kinds = (await listOutboxForOrg({ db, orgId: owner.orgId })).map((r) => r.event.kind);
    expect(kinds).toEqual(["mailbox_admin_action_required", "mailbox_recovered"]);
  });
});
