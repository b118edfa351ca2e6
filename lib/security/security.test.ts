import { eq, like } from "drizzle-orm";
import { afterEach, describe, expect, it } from "vitest";
import { getDb } from "@/db";
import { countMailboxesByStatus } from "@/db/queries/mailboxes";
import { countSendsSince } from "@/db/queries/messages";
import { getClientCredentialFacts } from "@/db/queries/organization-settings";
import { instances, messages } from "@/db/schema";
import { beat } from "@/lib/deployment/heartbeat";
import { useRateLimits } from "@/lib/mail/testing";
import { insertMailboxRow } from "@/lib/oauth/testing/fixtures";
import { auditEventsOf } from "@/lib/testing/audit";
import { memberContext } from "@/lib/testing/context";
import { createOwner } from "@/lib/testing/factories";
import { clientFactsSchema, updateClientCredentialFacts } from "./client-facts";
import { credentialChecks, daysUntil, limitBackendCheck, securityStatus } from "./status";

const DAY = 86_400_000;
const isoIn = (days: number, now = new Date()) =>
  new Date(now.getTime() + days * DAY).toISOString().slice(0, 10);

const NO_FACTS = {
  googlePublishingStatus: null,
  googleSecretExpiresOn: null,
  microsoftSecretExpiresOn: null,
} as const;

describe("the client credential facts", () => {
  it("warns on a Google app in Testing, and 30 days before a secret expires; alarms once expired", () => {
    const now = new Date("2026-12-01T12:00:00Z");
    const levels = (facts: Parameters<typeof credentialChecks>[0]) =>
      credentialChecks(facts, now).map((c) => c.level);
    expect(levels(NO_FACTS)).toEqual(["info", "info", "info"]);
    expect(levels({ ...NO_FACTS, googlePublishingStatus: "testing" })[0]).toBe("warning");
    expect(
      credentialChecks({ ...NO_FACTS, googlePublishingStatus: "testing" }, now)[0]?.text,
    ).toMatch(/7 days/);
    expect(levels({ ...NO_FACTS, googlePublishingStatus: "production" })[0]).toBe("ok");
    expect(levels({ ...NO_FACTS, googleSecretExpiresOn: "2026-12-31" })[1]).toBe("warning");
    expect(levels({ ...NO_FACTS, googleSecretExpiresOn: "2027-01-01" })[1]).toBe("ok");
    expect(levels({ ...NO_FACTS, microsoftSecretExpiresOn: "2026-11-30" })[2]).toBe("alarm");
    expect(daysUntil("2026-12-11", now)).toBe(10);
  });

  it("a bad value is refused naming its field; empty values mean 'not known'", () => {
    const bad = clientFactsSchema.safeParse({
      googlePublishingStatus: "beta",
      googleSecretExpiresOn: "2026-02-30",
      microsoftSecretExpiresOn: "next year",
    });
    expect(bad.success).toBe(false);
    const fields = Object.keys(bad.error?.flatten().fieldErrors ?? {}).sort();
    expect(fields).toEqual([
      "googlePublishingStatus",
      "googleSecretExpiresOn",
      "microsoftSecretExpiresOn",
    ]);
    const empty = clientFactsSchema.parse({
      googlePublishingStatus: "",
      googleSecretExpiresOn: "",
      microsoftSecretExpiresOn: " ",
    });
    expect(empty).toEqual(NO_FACTS);
  });

  it("stores the facts for the caller's organisation only, audited with what changed", async () => {
    const a = await createOwner();
    const b = await createOwner();
    const ctx = memberContext(a.orgId, a.user, "owner");
    const facts = {
      googlePublishingStatus: "testing" as const,
      googleSecretExpiresOn: "2030-01-31",
      microsoftSecretExpiresOn: null,
    };
    expect((await updateClientCredentialFacts(ctx, facts)).changed).toEqual([
      "googlePublishingStatus",
      "googleSecretExpiresOn",
    ]);
    const db = await getDb();
    expect(await getClientCredentialFacts({ db, orgId: a.orgId })).toEqual(facts);
    expect(await getClientCredentialFacts({ db, orgId: b.orgId })).toEqual(NO_FACTS);
    const events = await auditEventsOf(a.orgId, { action: "settings.client_facts_changed" });
    expect(events).toHaveLength(1);
    expect(events[0]?.actorId).toBe(a.user.id);
    expect(events[0]?.metadata).toMatchObject({
      from: { googlePublishingStatus: null, googleSecretExpiresOn: null },
      to: { googlePublishingStatus: "testing", googleSecretExpiresOn: "2030-01-31" },
    });
    // The same facts again: nothing changes, nothing is logged.
    expect((await updateClientCredentialFacts(ctx, facts)).changed).toEqual([]);
    expect(await auditEventsOf(a.orgId, { action: "settings.client_facts_changed" })).toHaveLength(
      1,
    );
  });
});

describe("the rate-limit backend", () => {
  it("warns when in-process limits run in more than one instance, alarms when the store is down", () => {
    expect(limitBackendCheck({ backend: "memory", ok: true }, 1).level).toBe("ok");
    const split = limitBackendCheck({ backend: "memory", ok: true }, 3);
    expect(split.level).toBe("warning");
    expect(split.text).toMatch(/3 instances/);
    expect(limitBackendCheck({ backend: "redis", ok: true }, 3).level).toBe("ok");
    expect(limitBackendCheck({ backend: "redis", ok: false }, 1).level).toBe("alarm");
  });
});

describe("securityStatus", () => {
  let restore: (() => Promise<void>) | undefined;
  afterEach(async () => {
    await restore?.();
    restore = undefined;
    const db = await getDb();
    await db.delete(instances).where(like(instances.host, "test-host-%"));
  });

  it("all 21 practices; mailboxes needing action linked; the caller's facts; the key's age", async () => {
    restore = useRateLimits({});
    const a = await createOwner();
    const b = await createOwner();
    const broken = await insertMailboxRow({
      person: a,
      provider: "demo",
      address: "broken@example.test",
      status: "needs_reconnect",
    });
    await insertMailboxRow({
      person: b,
      provider: "demo",
      address: "other-org@example.test",
      status: "admin_action_required",
    });
    await updateClientCredentialFacts(memberContext(a.orgId, a.user, "owner"), {
      googlePublishingStatus: null,
      googleSecretExpiresOn: isoIn(10),
      microsoftSecretExpiresOn: null,
    });
    await beat();

    const status = await securityStatus({ db: await getDb(), orgId: a.orgId });
    expect(status.practices.map((p) => p.number)).toEqual(
      Array.from({ length: 21 }, (_, i) => i + 1),
    );
    const texts = status.attention.map((c) => c.text).join("\n");
    expect(texts).toMatch(/Google client secret expires on .* in 10 days/);
    expect(texts).toContain("broken@example.test needs reconnecting");
    expect(texts).not.toContain("other-org@example.test");
    expect(status.attention.find((c) => c.text.includes("broken@"))?.href).toBe(
      `/mailboxes?status=needs_reconnect#mailbox-${broken}`,
    );
    const key = status.practices.find((p) => p.number === 4)?.checks[0];
    expect(key?.level).toBe("ok");
    expect(key?.text).toMatch(/first seen 0 days ago/);
    // Nothing secret: no key material, no client secret.
    expect(JSON.stringify(status)).not.toMatch(/clientSecret|BEGIN|base64/);
  });

  it("a second live instance with in-process limits is a warning; a stale one is not counted", async () => {
    restore = useRateLimits({});
    const a = await createOwner();
    await beat();
    const db = await getDb();
    const now = new Date();
    await db.insert(instances).values([
      {
        id: `t-${now.getTime()}-live`,
        host: "test-host-live",
        pid: 1,
        startedAt: now,
        lastSeenAt: now,
      },
      {
        id: `t-${now.getTime()}-stale`,
        host: "test-host-stale",
        pid: 2,
        startedAt: now,
        lastSeenAt: new Date(now.getTime() - 3 * 60_000),
      },
    ]);
    const status = await securityStatus({ db, orgId: a.orgId, now });
    const limits = status.practices.find((p) => p.number === 13)?.checks[0];
    // The suite's limiter follows REDIS_URL: in-process without it.
    if (process.env.REDIS_URL) {
      expect(limits?.level).toBe("ok");
    } else {
      expect(limits?.level).toBe("warning");
      expect(limits?.text).toMatch(/instances were seen/);
    }
    await db.delete(instances).where(eq(instances.host, "test-host-stale"));
  });

  it("the limit store unreachable is an alarm", async () => {
    restore = useRateLimits({}, { redisUrl: "redis://127.0.0.1:6390" });
    const a = await createOwner();
    const status = await securityStatus({ db: await getDb(), orgId: a.orgId });
    const limits = status.practices.find((p) => p.number === 13)?.checks[0];
    expect(limits?.level).toBe("alarm");
    expect(limits?.text).toMatch(/temporarily unavailable/);
  });
});

describe("the overview's counts", () => {
  it("mailboxes by status and sends over 24 h and 14 days, for the organisation only", async () => {
    const a = await createOwner();
    const b = await createOwner();
    for (const status of ["connected", "connected", "needs_reconnect", "paused"] as const) {
      await insertMailboxRow({ person: a, provider: "demo", status });
    }
    await insertMailboxRow({ person: b, provider: "demo", status: "needs_reconnect" });
    const db = await getDb();
    expect(await countMailboxesByStatus({ db, orgId: a.orgId })).toEqual({
      connected: 2,
      needs_reconnect: 1,
      admin_action_required: 0,
      paused: 1,
      revoked: 0,
    });

    const now = Date.now();
    const row = (orgId: string, status: "sent" | "failed", hoursAgo: number) => ({
      orgId,
      senderType: "user",
      senderId: a.user.id,
      recipients: { to: ["r@example.test"], cc: [], bcc: [] },
      recipientCount: 1,
      subject: "count",
      status,
      createdAt: new Date(now - hoursAgo * 3_600_000),
    });
    await db
      .insert(messages)
      .values([
        row(a.orgId, "sent", 1),
        row(a.orgId, "failed", 2),
        row(a.orgId, "sent", 48),
        row(a.orgId, "failed", 24 * 13),
        row(a.orgId, "sent", 24 * 15),
        row(b.orgId, "sent", 1),
      ]);
    expect(
      await countSendsSince({
        db,
        orgId: a.orgId,
        day: new Date(now - 86_400_000),
        fortnight: new Date(now - 14 * 86_400_000),
      }),
    ).toEqual({ day: { sent: 1, failed: 1 }, fortnight: { sent: 2, failed: 2 } });
  });
});
