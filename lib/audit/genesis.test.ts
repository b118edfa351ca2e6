import { and, asc, eq, isNull, sql } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { getDb } from "@/db";
import { getUnsealedAuditSummary, insertAuditEvent } from "@/db/queries/audit";
import { insertOrganization } from "@/db/queries/organizations";
import { auditEvents } from "@/db/schema";
import { UNSEALED_ALARM_MS } from "@/lib/security/checks";
import { createOwner } from "@/lib/testing/factories";
import { AuditChainError, sealPending } from "./seal";
import { startAuditChain, startRefusedAuditChains } from "./start-chain";
import { verifyChainReport } from "./testing/verify";

const HOUR = 3_600_000;

async function insertAt(orgId: string, occurredAt: Date, i: number) {
  await insertAuditEvent({
    db: await getDb(),
    values: {
      chain: orgId,
      orgId,
      occurredAt,
      actorType: "user",
      actorId: null,
      actorLabel: "alice@example.test",
      action: "message.sent",
      targetType: "message",
      targetId: `m-${i}`,
      outcome: "success",
      metadata: { i },
    },
  });
}

/** An organisation created three days ago with thirty sealed sends since. */
async function oldOrganisation() {
  const db = await getDb();
  const { orgId } = await createOwner("genesis");
  const start = Date.now() - 72 * HOUR;
  await db.execute(
    sql`update organizations set created_at = ${new Date(start).toISOString()} where id = ${orgId}`,
  );
  for (let i = 0; i < 30; i++) await insertAt(orgId, new Date(start + i * 2 * HOUR), i);
  await sealPending({ db, chain: orgId });
  return orgId;
}

/** The reviewer's rewrite: delete a range, edit one, unseal the rest, remove head and anchors. */
async function rewrite(orgId: string) {
  const db = await getDb();
  await db.execute(sql`delete from audit_events where chain = ${orgId} and seq between 10 and 15`);
  await db.execute(
    sql`update audit_events set action = 'member.removed' where chain = ${orgId} and seq = 20`,
  );
  await db.execute(
    sql`update audit_events set seq = null, prev_hash = null, hash = null, personal_mac = null where chain = ${orgId}`,
  );
  await db.execute(sql`delete from audit_chain_heads where chain = ${orgId}`);
  await db.execute(sql`delete from audit_checkpoints where chain = ${orgId}`);
  await db.execute(sql`delete from audit_chain_anchors where chain = ${orgId}`);
}

async function rows(orgId: string) {
  return (await getDb())
    .select({ seq: auditEvents.seq, action: auditEvents.action })
    .from(auditEvents)
    .where(eq(auditEvents.chain, orgId))
    .orderBy(asc(auditEvents.id));
}

async function expectRefusedAndAlarmed(orgId: string, reason: RegExp) {
  const db = await getDb();
  const attempt = sealPending({ db, chain: orgId });
  await expect(attempt).rejects.toBeInstanceOf(AuditChainError);
  await expect(sealPending({ db, chain: orgId })).rejects.toThrow(reason);
  // Nothing was sealed afresh: the events wait, and the activity and security pages' alarm holds.
  const pending = await db
    .select({ id: auditEvents.id })
    .from(auditEvents)
    .where(and(eq(auditEvents.chain, orgId), isNull(auditEvents.seq)));
  expect(pending).toHaveLength((await rows(orgId)).length);
  const unsealed = await getUnsealedAuditSummary({ db, chain: orgId });
  expect(Date.now() - (unsealed.oldest?.getTime() ?? Date.now())).toBeGreaterThan(
    UNSEALED_ALARM_MS,
  );
  const result = await verifyChainReport(orgId);
  expect(result.code).toBe(1);
  expect(result.text).not.toMatch(/intact/);
  expect(result.text).toMatch(/BROKEN .*no head record, yet its/);
}

describe("starting a chain from genesis", () => {
  it("refuses to re-seal a chain whose history was unsealed and rewritten", async () => {
    const orgId = await oldOrganisation();
    expect((await verifyChainReport(orgId)).text).toMatch(/intact/);
    await rewrite(orgId);
    await expectRefusedAndAlarmed(
      orgId,
      /no head record, yet its oldest unsealed event is \d+ s old/,
    );
  });

  it("refuses too when the rewrite also moves every event into the last minute", async () => {
    const orgId = await oldOrganisation();
    await rewrite(orgId);
    await (await getDb()).execute(
      sql`update audit_events set occurred_at = now() where chain = ${orgId}`,
    );
    await expect(sealPending({ db: await getDb(), chain: orgId })).rejects.toThrow(
      /no head record, yet its organisation was created \d+ s ago/,
    );
    expect((await rows(orgId)).every((r) => r.seq === null)).toBe(true);
  });

  it("seals a brand-new organisation's first events from genesis", async () => {
    const db = await getDb();
    const owner = await createOwner("genesis-new");
    expect(await rows(owner.orgId)).toEqual([{ seq: 1, action: "org.created" }]);
    // A chain whose first events are left to the background sealer (no inline event first).
    const org = await insertOrganization({ db, name: "Fresh" });
    for (let i = 0; i < 3; i++) await insertAt(org.id, new Date(), i);
    expect((await sealPending({ db, chain: org.id })).sealed).toBe(3);
    expect((await rows(org.id)).map((r) => r.seq)).toEqual([1, 2, 3]);
    expect((await verifyChainReport(org.id)).code).toBe(0);
  });

  it("lets an operator start a refused chain deliberately, audited, and prints each head", async () => {
    const orgId = await oldOrganisation();
    await rewrite(orgId);
    await expect(sealPending({ db: await getDb(), chain: orgId })).rejects.toThrow(AuditChainError);
    const started = await startAuditChain({
      db: await getDb(),
      chain: orgId,
      reason: "restored from backup",
    });
    const sealed = started?.sealed;
    const all = await rows(orgId);
    expect(sealed).toBe(all.length);
    expect(all.every((r) => r.seq !== null)).toBe(true);
    expect(all.at(-1)).toEqual({ seq: all.length, action: "audit.chain_started" });
    const result = await verifyChainReport(orgId);
    expect(result.code).toBe(0);
    expect(result.text).toContain(`head: chain ${orgId} seq ${all.length} hash `);
    await expect(
      startAuditChain({ db: await getDb(), chain: orgId, reason: "again" }),
    ).rejects.toThrow(/already has a head/);
  });

  it("starts every refused chain at once, leaves new ones to the sealer, reports one it cannot start", async () => {
    const db = await getDb();
    const [first, second] = [await oldOrganisation(), await oldOrganisation()];
    await rewrite(first);
    await rewrite(second);
    // A new chain the sealer starts on its own.
    const fresh = await insertOrganization({ db, name: "Fresh too" });
    await insertAt(fresh.id, new Date(), 0);
    // Sealed events whose head was deleted: starting it again would re-seal them, so it is not.
    const headless = await oldOrganisation();
    await db.execute(sql`delete from audit_chain_heads where chain = ${headless}`);
    await insertAt(headless, new Date(), 99);

    const results = await startRefusedAuditChains({ db, reason: "restored from backup" });
    const mine = new Map(
      results
        .filter((r) => [first, second, fresh.id, headless].includes(r.chain))
        .map((r) => [r.chain, r]),
    );
    expect(mine.get(first)).toEqual({ chain: first, sealed: (await rows(first)).length });
    expect(mine.get(second)).toEqual({ chain: second, sealed: (await rows(second)).length });
    expect(mine.has(fresh.id)).toBe(false);
    expect(mine.get(headless)).toMatchObject({ error: /sealed events but no head record/ });
    for (const chain of [first, second]) {
      expect((await rows(chain)).at(-1)?.action).toBe("audit.chain_started");
      expect((await verifyChainReport(chain)).code).toBe(0);
    }
    expect((await rows(fresh.id)).map((r) => r.seq)).toEqual([null]);
    expect((await rows(headless)).some((r) => r.action === "audit.chain_started")).toBe(false);
  });
});
