import { and, eq, inArray, sql } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { getDb, withRunLock } from "@/db";
import { setRetentionSettings } from "@/db/queries/organization-settings";
import { auditChainHeads, auditEvents, messages, webhookDeliveries } from "@/db/schema";
import { sealPending } from "@/lib/audit/seal";
import { verifyAuditChain } from "@/lib/audit/verify";
import { verifyAllAuditChains } from "@/lib/audit/verify-all";
import { auditEventsOf } from "@/lib/testing/audit";
import { createOwner, insertWebhookDeliveries } from "@/lib/testing/factories";
import { applyPersonalDataRetention, RETENTION_BATCH } from "./retention";

const DAY_MS = 86_400_000;
const daysAgo = (days: number) => new Date(Date.now() - days * DAY_MS);

type Owner = Awaited<ReturnType<typeof createOwner>>;

/** `count` messages of the organisation created `age` days ago, each naming two recipients. */
async function insertMessages(owner: Owner, age: number, count = 1, smtpResponse?: string) {
  const db = await getDb();
  const rows = await db
    .insert(messages)
    .values(
      Array.from({ length: count }, (_, i) => ({
        orgId: owner.orgId,
        senderType: "user",
        senderId: owner.user.id,
        recipients: { to: [`bob-${i}@example.test`], cc: [], bcc: [`carol-${i}@example.test`] },
        recipientCount: 2,
        subject: `Salary review for Bob ${i}`,
        status: "sent" as const,
        smtpResponse: smtpResponse ?? "250 2.0.0 OK",
        createdAt: daysAgo(age),
      })),
    )
    .returning({ id: messages.id });
  return rows.map((r) => r.id);
}

/** `count` unsealed events of the organisation that occurred `age` days ago, from a browser. */
async function insertEvents(owner: Owner, age: number, count = 1) {
  const db = await getDb();
  const rows = await db
    .insert(auditEvents)
    .values(
      Array.from({ length: count }, (_, i) => ({
        chain: owner.orgId,
        orgId: owner.orgId,
        occurredAt: new Date(daysAgo(age).getTime() + i),
        actorType: "user",
        actorId: owner.user.id,
        actorLabel: owner.user.email,
        action: "api_key.created",
        targetType: "api_key",
        targetId: `key-${i}`,
        outcome: "success" as const,
        ip: "203.0.113.7",
        userAgent: "Mozilla/5.0 (retention test)",
        metadata: { i },
        personal: { email: "dave@example.test" },
      })),
    )
    .returning({ id: auditEvents.id });
  return rows.map((r) => r.id);
}

async function messageRows(ids: string[]) {
  const db = await getDb();
  return db.select().from(messages).where(inArray(messages.id, ids));
}

async function eventRows(ids: number[]) {
  const db = await getDb();
  return db.select().from(auditEvents).where(inArray(auditEvents.id, ids));
}

async function verifiesFromGenesis(chain: string) {
  const out = {
    text: "",
    write(t: string) {
      this.text += t;
    },
  };
  return verifyAllAuditChains({ db: await getDb(), chain, out, err: out });
}

describe("personal data retention", () => {
  it("deletes finished webhook deliveries past the messages' period; pending and newer ones stay", async () => {
    const db = await getDb();
    const owner = await createOwner();
    const body = (n: number) =>
      JSON.stringify({ type: "message.sent", data: { mailbox: `m${n}@example.test` } });
    const [oldDelivered, oldFailed, oldPending, recent] = await insertWebhookDeliveries(
      owner.orgId,
      [
        { body: body(1), status: "delivered", finishedAt: daysAgo(95) },
        { body: body(2), status: "failed", finishedAt: daysAgo(91) },
        { body: body(3), status: "pending" },
        { body: body(4), status: "delivered", finishedAt: daysAgo(80) },
      ],
    );
    const runs = await applyPersonalDataRetention({ db });
    expect(runs?.find((r) => r.orgId === owner.orgId)).toMatchObject({
      webhookDeliveries: 2,
      failed: false,
    });
    const left = await db
      .select({ id: webhookDeliveries.id })
      .from(webhookDeliveries)
      .where(eq(webhookDeliveries.orgId, owner.orgId));
    expect(left.map((r) => r.id).sort()).toEqual([oldPending, recent].sort());
    expect([oldDelivered, oldFailed].some((id) => left.some((r) => r.id === id))).toBe(false);
    const [event] = await auditEventsOf(owner.orgId, { action: "privacy.retention_applied" });
    expect(event?.metadata).toMatchObject({ webhookDeliveries: 2 });
  });

  it("removes addresses from an old message's failure cause as from its SMTP reply; a newer one keeps its cause", async () => {
    const db = await getDb();
    const owner = await createOwner();
    const [old] = await insertMessages(owner, 95);
    const [recent] = await insertMessages(owner, 80);
    // A cancel names the member who cancelled; a queued failure, the mailbox it went from.
    const cause = "Cancelled by Dora.Member@Example.test before it was sent.";
    await db
      .update(messages)
      .set({ lastError: cause })
      .where(inArray(messages.id, [old ?? "", recent ?? ""]));

    const runs = await applyPersonalDataRetention({ db });
    expect(runs?.find((r) => r.orgId === owner.orgId)).toMatchObject({ messages: 1 });
    const rows = new Map((await messageRows([old ?? "", recent ?? ""])).map((r) => [r.id, r]));
    expect(rows.get(old ?? "")?.lastError).toBe("Cancelled by [removed] before it was sent.");
    expect(rows.get(recent ?? "")?.lastError).toBe(cause);
  });

  it("empties messages older than the default 90 days and keeps newer ones; the run is audited", async () => {
    const db = await getDb();
    const owner = await createOwner();
    const old = await insertMessages(
      owner,
      95,
      1,
      "550 5.1.1 <bob-0@example.test>: Recipient address rejected",
    );
    const recent = await insertMessages(owner, 80);

    const runs = await applyPersonalDataRetention({ db });
    expect(runs?.find((r) => r.orgId === owner.orgId)).toEqual({
      orgId: owner.orgId,
      messages: 1,
      webhookDeliveries: 0,
      auditEvents: 0,
      failed: false,
    });

    const [gone] = await messageRows(old);
    expect(gone?.recipients).toEqual({ to: [], cc: [], bcc: [] });
    expect(gone?.subject).toBe("[removed after 90 days]");
    expect(gone?.smtpResponse).toBe("550 5.1.1 <[removed]>: Recipient address rejected");
    expect(gone?.personalRemovedAt).toBeInstanceOf(Date);
    expect(gone?.recipientCount).toBe(2);
    expect(gone?.status).toBe("sent");
    const [kept] = await messageRows(recent);
    expect(kept?.recipients).toEqual({
      to: ["bob-0@example.test"],
      cc: [],
      bcc: ["carol-0@example.test"],
    });
    expect(kept?.subject).toBe("Salary review for Bob 0");
    expect(kept?.personalRemovedAt).toBeNull();

    const [event, ...more] = await auditEventsOf(owner.orgId, {
      action: "privacy.retention_applied",
    });
    expect(more).toHaveLength(0);
    expect(event?.actorType).toBe("system");
    expect(event?.metadata).toMatchObject({ messages: 1, messageDays: 90, auditEvents: 0 });
    expect(event?.seq).not.toBeNull();
    expect(await verifiesFromGenesis(owner.orgId)).toBe(0);

    // Nothing left to do: a second run changes nothing and adds no event.
    const again = await applyPersonalDataRetention({ db });
    expect(again?.find((r) => r.orgId === owner.orgId)).toBeUndefined();
    expect(await auditEventsOf(owner.orgId, { action: "privacy.retention_applied" })).toHaveLength(
      1,
    );
  });

  it("follows the organisation's periods, in batches, and keeps everything when they are empty", async () => {
    const db = await getDb();
    const owner = await createOwner();
    const keeper = await createOwner("keeper");
    await setRetentionSettings({
      db,
      orgId: owner.orgId,
      settings: { auditDays: null, messageDays: 7, networkDays: null },
    });
    await setRetentionSettings({
      db,
      orgId: keeper.orgId,
      settings: { auditDays: null, messageDays: null, networkDays: null },
    });
    const many = await insertMessages(owner, 8, RETENTION_BATCH * 2 + 50);
    const young = await insertMessages(owner, 6);
    const keepersOld = await insertMessages(keeper, 400);
    const keepersEvents = await insertEvents(keeper, 400);
    await sealPending({ db, chain: keeper.orgId });

    const runs = await applyPersonalDataRetention({ db });
    expect(runs?.find((r) => r.orgId === owner.orgId)?.messages).toBe(RETENTION_BATCH * 2 + 50);
    expect(runs?.find((r) => r.orgId === keeper.orgId)).toBeUndefined();

    const [{ left } = { left: -1 }] = await db
      .select({ left: sql<number>`count(*)::int` })
      .from(messages)
      .where(and(inArray(messages.id, many), sql`${messages.personalRemovedAt} is null`));
    expect(left).toBe(0);
    expect((await messageRows(many.slice(0, 1)))[0]?.subject).toBe("[removed after 7 days]");
    expect((await messageRows(young))[0]?.personalRemovedAt).toBeNull();
    expect((await messageRows(keepersOld))[0]?.subject).toBe("Salary review for Bob 0");
    expect((await eventRows(keepersEvents))[0]?.ip).toBe("203.0.113.7");
  });

  it("removes IP and user agent from old events; the chain verifies and an edit is still caught", async () => {
    const db = await getDb();
    const owner = await createOwner();
    await setRetentionSettings({
      db,
      orgId: owner.orgId,
      settings: { auditDays: null, messageDays: null, networkDays: 30 },
    });
    const old = await insertEvents(owner, 31, RETENTION_BATCH + 5);
    const recent = await insertEvents(owner, 29, 2);
    await sealPending({ db, chain: owner.orgId });
    // Committed after the last seal: retention seals it first rather than skipping it.
    const pending = await insertEvents(owner, 40);

    const runs = await applyPersonalDataRetention({ db });
    expect(runs?.find((r) => r.orgId === owner.orgId)).toEqual({
      orgId: owner.orgId,
      messages: 0,
      webhookDeliveries: 0,
      auditEvents: RETENTION_BATCH + 6,
      failed: false,
    });

    const stripped = await eventRows([...old, ...pending]);
    expect(stripped).toHaveLength(RETENTION_BATCH + 6);
    for (const row of stripped) {
      expect(row.ip).toBeNull();
      expect(row.userAgent).toBeNull();
      expect(row.personalErasedAt).toBeInstanceOf(Date);
      // Only the network fields go: who acted and what the event named stay.
      expect(row.actorLabel).toBe(owner.user.email);
      expect(row.personal).toEqual({ email: "dave@example.test" });
    }
    for (const row of await eventRows(recent)) {
      expect(row.ip).toBe("203.0.113.7");
      expect(row.userAgent).toBe("Mozilla/5.0 (retention test)");
      expect(row.personalErasedAt).toBeNull();
    }
    const [event] = await auditEventsOf(owner.orgId, { action: "privacy.retention_applied" });
    expect(event?.metadata).toMatchObject({
      auditEvents: RETENTION_BATCH + 6,
      networkDays: 30,
      messages: 0,
    });
    expect(await verifiesFromGenesis(owner.orgId)).toBe(0);

    // An edit of a retained IP address is still caught...
    const [retained] = recent;
    await db
      .update(auditEvents)
      .set({ ip: "192.0.2.1" })
      .where(eq(auditEvents.id, retained ?? 0));
    let report = await verifyAuditChain({ db, chain: owner.orgId, mode: "full" });
    expect(report.problem?.id).toBe(retained);
    expect(await verifiesFromGenesis(owner.orgId)).toBe(1);
    await db
      .update(auditEvents)
      .set({ ip: "203.0.113.7" })
      .where(eq(auditEvents.id, retained ?? 0));
    expect(await verifiesFromGenesis(owner.orgId)).toBe(0);
    // ...and so is putting a value back into a field retention removed.
    const [first] = old;
    await db
      .update(auditEvents)
      .set({ ip: "192.0.2.1" })
      .where(eq(auditEvents.id, first ?? 0));
    report = await verifyAuditChain({ db, chain: owner.orgId, mode: "full" });
    expect(report.problem?.id).toBe(first);
  });

  it("removes IP and user agent from the system chain's old events after the default period", async () => {
    const db = await getDb();
    // Events of no organisation: a refused unknown API key, with the caller's address.
    const systemEvent = (age: number) => ({
      chain: "",
      orgId: null,
      occurredAt: daysAgo(age),
      actorType: "system",
      actorLabel: "Unauthenticated API client",
      action: "api_key.refused",
      outcome: "denied" as const,
      ip: "198.51.100.23",
      userAgent: "curl/8.5.0 (retention test)",
      metadata: { reason: "unknown" },
    });
    // The system chain exists long before its events are a month old: its first event is sealed
    // within seconds (the sealer starts no chain from genesis on events a minute old).
    await db.insert(auditEvents).values({ ...systemEvent(0), occurredAt: new Date() });
    await sealPending({ db, chain: "" });
    const [old, recent] = await db
      .insert(auditEvents)
      .values([systemEvent(31), systemEvent(29)])
      .returning({ id: auditEvents.id });

    const runs = await applyPersonalDataRetention({ db });

    const [stripped] = await eventRows([old?.id ?? 0]);
    expect(stripped).toMatchObject({
      ip: null,
      userAgent: null,
      actorLabel: "Unauthenticated API client",
    });
    const [kept] = await eventRows([recent?.id ?? 0]);
    expect(kept).toMatchObject({ ip: "198.51.100.23", userAgent: "curl/8.5.0 (retention test)" });
    // The run reports the system chain as "" and is audited there, and the chain verifies.
    expect(runs?.find((r) => r.orgId === "")).toMatchObject({ failed: false });
    const [event] = await db
      .select()
      .from(auditEvents)
      .where(and(eq(auditEvents.chain, ""), eq(auditEvents.action, "privacy.retention_applied")));
    expect(event?.metadata).toMatchObject({ networkDays: 30 });
    expect(await verifiesFromGenesis("")).toBe(0);
  });

  it("carries on past an organisation whose chain the sealer refuses", async () => {
    const db = await getDb();
    const broken = await createOwner("broken");
    const healthy = await createOwner("healthy");
    const brokenMessage = await insertMessages(broken, 100);
    const brokenEvent = await insertEvents(broken, 40);
    await sealPending({ db, chain: broken.orgId });
    await db.delete(auditChainHeads).where(eq(auditChainHeads.chain, broken.orgId));
    const healthyMessage = await insertMessages(healthy, 100);

    const runs = await applyPersonalDataRetention({ db });
    expect(runs?.find((r) => r.orgId === broken.orgId)).toEqual({
      orgId: broken.orgId,
      messages: 1,
      webhookDeliveries: 0,
      auditEvents: 0,
      failed: true,
    });
    expect(runs?.find((r) => r.orgId === healthy.orgId)?.failed).toBe(false);
    // Messages need no chain: they are emptied; the refused chain's events are left alone.
    expect((await messageRows(brokenMessage))[0]?.personalRemovedAt).toBeInstanceOf(Date);
    expect((await eventRows(brokenEvent))[0]?.ip).toBe("203.0.113.7");
    expect((await messageRows(healthyMessage))[0]?.personalRemovedAt).toBeInstanceOf(Date);
  });

  it("runs one at a time: a run that finds another running does nothing", async () => {
    const db = await getDb();
    const owner = await createOwner();
    const old = await insertMessages(owner, 100);
    const inner = await withRunLock(db, "retention:personal", () =>
      applyPersonalDataRetention({ db }),
    );
    expect(inner).toBeNull();
    expect((await messageRows(old))[0]?.personalRemovedAt).toBeNull();
  });

  it.skipIf(!process.env.DATABASE_URL)(
    "on PostgreSQL, another session's hold on the lock stops the run",
    async () => {
      const db = await getDb();
      const owner = await createOwner();
      const old = await insertMessages(owner, 100);
      const inner = await db.transaction(async (tx) => {
        await tx.execute(
          sql`select pg_advisory_xact_lock(hashtextextended('retention:personal', 0))`,
        );
        return applyPersonalDataRetention({ db });
      });
      expect(inner).toBeNull();
      expect((await messageRows(old))[0]?.personalRemovedAt).toBeNull();
      expect(await applyPersonalDataRetention({ db })).not.toBeNull();
      expect((await messageRows(old))[0]?.personalRemovedAt).toBeInstanceOf(Date);
    },
  );
});
