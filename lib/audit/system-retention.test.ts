import { randomUUID } from "node:crypto";
import { and, eq, inArray, sql } from "drizzle-orm";
import { describe, expect, it, vi } from "vitest";
import { getDb } from "@/db";
import { insertAuditEvent } from "@/db/queries/audit";
import { setAuditRetentionDays } from "@/db/queries/organization-settings";
import { auditEvents } from "@/db/schema";
import { env } from "@/lib/env";
import { createOwner } from "@/lib/testing/factories";
import { runAuditRetention } from "./retention";
import { sealPending } from "./seal";
import { verifyChainReport } from "./testing/verify";

// The system chain ('': events of no organisation, such as refused unknown API keys with the
// caller's address) is purged by the daily job like an organisation's, after the operators'
// SYSTEM_AUDIT_RETENTION_DAYS. The suite shares one database, so the system chain may already
// hold other files' events: every cut-off here is a moment this file picks, after them.

const DAY_MS = 86_400_000;

/** Refused unknown API keys from a stranger's address, at the given times, sealed into ''. */
async function systemEvents(times: number[]) {
  const db = await getDb();
  const ids: number[] = [];
  for (const time of times) {
    const row = await insertAuditEvent({
      db,
      values: {
        chain: "",
        orgId: null,
        occurredAt: new Date(time),
        actorType: "system",
        actorLabel: "Unauthenticated API client",
        action: "api_key.refused",
        targetType: null,
        targetId: `probe-${randomUUID()}`,
        outcome: "denied",
        ip: "198.51.100.77",
        userAgent: "curl/8.5.0 (system retention test)",
        metadata: { reason: "unknown" },
      },
    });
    ids.push(row.id);
  }
  await sealPending({ db, chain: "" });
  return ids;
}

async function remaining(ids: number[]) {
  const db = await getDb();
  const rows = await db
    .select({ id: auditEvents.id })
    .from(auditEvents)
    .where(inArray(auditEvents.id, ids));
  return rows.map((r) => r.id).sort((a, b) => a - b);
}

async function systemPurges() {
  const db = await getDb();
  return db
    .select()
    .from(auditEvents)
    .where(and(eq(auditEvents.chain, ""), eq(auditEvents.action, "audit.purged")))
    .orderBy(auditEvents.id);
}

/** An organisation keeping 30 days, with a few sealed events from now. */
async function orgKeeping30Days() {
  const db = await getDb();
  const owner = await createOwner("system-retention");
  await sealPending({ db, chain: owner.orgId });
  await setAuditRetentionDays({ db, orgId: owner.orgId, days: 30 });
  return owner;
}

describe("retention of the system chain", () => {
  it("purges the system chain's events older than SYSTEM_AUDIT_RETENTION_DAYS; it still verifies and records the purge there", async () => {
    const db = await getDb();
    const cutoff = Date.now();
    const old = await systemEvents([cutoff - 2_000, cutoff - 1_000]);
    const young = await systemEvents([cutoff, cutoff + 1]);
    const purgesBefore = (await systemPurges()).length;

    const result = await runAuditRetention({
      db,
      now: new Date(cutoff + 30 * DAY_MS),
      systemRetentionDays: 30,
    });

    const system = result?.find((r) => r.orgId === "");
    expect(system?.removed).toBeGreaterThanOrEqual(old.length);
    expect(await remaining(old)).toEqual([]);
    expect(await remaining(young)).toEqual(young);
    const purges = await systemPurges();
    expect(purges).toHaveLength(purgesBefore + 1);
    expect(purges.at(-1)).toMatchObject({
      orgId: null,
      actorLabel: "Retention",
      outcome: "success",
      metadata: { removed: system?.removed, retentionDays: 30 },
    });
    expect(purges.at(-1)?.seq).not.toBeNull();
    // npm run audit:verify: the chain verifies from the purge's anchor.
    expect(await verifyChainReport("")).toMatchObject({ code: 0 });
  });

  it("keeps the system chain's events when SYSTEM_AUDIT_RETENTION_DAYS is unset, while organisations are purged", async () => {
    const db = await getDb();
    expect(env().SYSTEM_AUDIT_RETENTION_DAYS).toBeUndefined();
    const owner = await orgKeeping30Days();
    const cutoff = Date.now();
    const old = await systemEvents([cutoff - 1_000]);
    const purgesBefore = (await systemPurges()).length;

    const result = await runAuditRetention({ db, now: new Date(cutoff + 3650 * DAY_MS) });

    expect(result?.find((r) => r.orgId === owner.orgId)?.removed).toBeGreaterThan(0);
    expect(result?.find((r) => r.orgId === "")).toBeUndefined();
    expect(await remaining(old)).toEqual(old);
    expect(await systemPurges()).toHaveLength(purgesBefore);
  });

  it("refuses an edited system chain and leaves it as it is; the organisations' purges of the same run stand", async () => {
    const db = await getDb();
    const owner = await orgKeeping30Days();
    const cutoff = Date.now();
    const [edited, other] = await systemEvents([cutoff - 2_000, cutoff - 1_000]);
    const purgesBefore = (await systemPurges()).length;
    // Someone with write access but not the chain key edits an event they want gone.
    const [original] = await db
      .select({ targetId: auditEvents.targetId })
      .from(auditEvents)
      .where(eq(auditEvents.id, edited ?? 0));
    await db.execute(
      sql`update audit_events set target_id = 'nothing-to-see' where id = ${edited ?? 0}`,
    );
    const logged = vi.spyOn(console, "error").mockImplementation(() => {});
    try {
      const result = await runAuditRetention({
        db,
        now: new Date(cutoff + 30 * DAY_MS),
        systemRetentionDays: 30,
      });

      // The operator reads the refusal in the log, naming the system chain.
      expect(logged.mock.calls.flat().join("\n")).toMatch(
        /audit retention: audit chain "" does not verify .*not purging/,
      );
      expect(result?.find((r) => r.orgId === "")).toBeUndefined();
      expect(await remaining([edited ?? 0, other ?? 0])).toEqual([edited, other]);
      expect(await systemPurges()).toHaveLength(purgesBefore);
      expect((await verifyChainReport("")).text).toMatch(/BROKEN chain \(global\) seq \d+/);
      // The organisation's purge in the same run committed.
      expect(result?.find((r) => r.orgId === owner.orgId)?.removed).toBeGreaterThan(0);
      const [orgPurge] = await db
        .select()
        .from(auditEvents)
        .where(and(eq(auditEvents.chain, owner.orgId), eq(auditEvents.action, "audit.purged")));
      expect(orgPurge?.seq).not.toBeNull();
    } finally {
      logged.mockRestore();
      // The suite shares the system chain: leave it as sound as it was found.
      await db
        .update(auditEvents)
        .set({ targetId: original?.targetId ?? null })
        .where(eq(auditEvents.id, edited ?? 0));
    }
    expect(await verifyChainReport("")).toMatchObject({ code: 0 });
  });
});
