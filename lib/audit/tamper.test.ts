import { and, eq, sql } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { getDb } from "@/db";
import { auditEvents, dataRequests } from "@/db/schema";
import { eraseSubject, recordDataRequest } from "@/lib/privacy/requests";
import { applyPersonalDataRetention } from "@/lib/privacy/retention";
import { auditEventsOf } from "@/lib/testing/audit";
import { memberContext } from "@/lib/testing/context";
import { createOwner } from "@/lib/testing/factories";
import { CHECKPOINT_EVERY } from "./chain";
import { purgeAuditChain } from "./retention";
import { sealPending } from "./seal";
import { verifyChainReport } from "./testing/verify";
import { verifyAuditChain } from "./verify";

// Someone with write access to the database but not AUDIT_CHAIN_KEY edits the log, then waits
// for the app's own jobs (personal data retention, an erasure, the retention purge) to rewrite
// or delete what they edited. The edit must stay visible to audit:verify.

const DAY_MS = 86_400_000;

/** `count` sealed events of the organisation, from `ageDays` ago a second apart, from a browser. */
async function seed(orgId: string, count: number, ageDays: number) {
  const db = await getDb();
  await db.execute(sql`
    insert into audit_events (chain, org_id, occurred_at, actor_type, actor_label, action,
      outcome, ip, user_agent, personal)
    select ${orgId}, ${orgId}, now() - make_interval(days => ${ageDays}) + g * interval '1 second',
      'user', 'alice@example.test', 'message.sent', 'success', '10.0.0.1', 'UA',
      '{"to":["dave@example.test"]}'::jsonb
    from generate_series(1, ${count}) g`);
  await sealPending({ db, chain: orgId });
}

/** The attacker's edit: event `seq` now names mallory as its actor and recipient. */
async function forge(orgId: string, seq: number) {
  const db = await getDb();
  await db.execute(sql`
    update audit_events set actor_label = 'mallory@evil.test',
      personal = '{"to":["mallory@evil.test"]}'::jsonb, ip = coalesce(ip, '1.1.1.1')
    where chain = ${orgId} and seq = ${seq}`);
}

async function eventAt(orgId: string, seq: number) {
  const db = await getDb();
  const [row] = await db
    .select()
    .from(auditEvents)
    .where(and(eq(auditEvents.chain, orgId), eq(auditEvents.seq, seq)));
  return row;
}

async function erase(owner: Awaited<ReturnType<typeof createOwner>>, email: string) {
  const officer = memberContext(owner.orgId, owner.user, "owner");
  const request = await recordDataRequest(officer, {
    kind: "erasure",
    email,
    receivedAt: new Date(),
  });
  return { request, result: await eraseSubject(officer, request.id) };
}

describe("edited personal fields are never re-signed", () => {
  it("network retention refuses an edited event: verify still names it, the run reports it", async () => {
    const db = await getDb();
    const owner = await createOwner("tamper-ret");
    const clean = await createOwner("tamper-ret-clean");
    await seed(owner.orgId, 10, 40);
    await seed(clean.orgId, 10, 40);
    // seq 1 is org.created: seq 4 is one of the seeded events, 40 days old.
    await forge(owner.orgId, 4);
    expect((await verifyChainReport(owner.orgId)).text).toMatch(
      /BROKEN chain \S+ seq 4 \(event id \d+\): personal fields do not match their MAC/,
    );

    const runs = await applyPersonalDataRetention({ db });
    expect(runs?.find((r) => r.orgId === owner.orgId)).toMatchObject({
      auditEvents: 0,
      failed: true,
      auditRefused: [{ seq: 4, reason: expect.stringMatching(/do not match their MAC/) }],
    });
    const forged = await eventAt(owner.orgId, 4);
    expect(forged).toMatchObject({
      actorLabel: "mallory@evil.test",
      ip: "10.0.0.1",
      personalErasedAt: null,
      personalErasedMac: null,
    });
    const after = await verifyChainReport(owner.orgId);
    expect(after.code).toBe(1);
    expect(after.text).toMatch(/seq 4 \(event id \d+\): personal fields do not match their MAC/);
    const [applied] = await auditEventsOf(owner.orgId, { action: "privacy.retention_applied" });
    expect(applied?.outcome).toBe("failure");
    expect(applied?.metadata).toMatchObject({ auditRefused: [{ seq: 4 }] });

    // An untouched chain loses its old IP addresses as before, and still verifies.
    expect(runs?.find((r) => r.orgId === clean.orgId)).toMatchObject({
      auditEvents: 10,
      failed: false,
    });
    expect((await eventAt(clean.orgId, 4))?.ip).toBeNull();
    expect(await verifyChainReport(clean.orgId)).toMatchObject({ code: 0 });
  }, 60_000);

  it("an erasure refuses an edited event, sealed or already erased: nothing erased, verify names it", async () => {
    const db = await getDb();
    const owner = await createOwner("tamper-erase");
    await seed(owner.orgId, 6, 1);
    await forge(owner.orgId, 3);
    const { request, result } = await erase(owner, "mallory@evil.test");
    expect(result).toMatchObject({
      kind: "refused",
      reason: expect.stringMatching(/Nothing was erased.*Events: seq 3\./),
    });
    expect(await eventAt(owner.orgId, 3)).toMatchObject({
      actorLabel: "mallory@evil.test",
      personal: { to: ["mallory@evil.test"] },
      personalErasedMac: null,
    });
    const [open] = await db.select().from(dataRequests).where(eq(dataRequests.id, request.id));
    expect(open?.completedAt).toBeNull();
    const [refusal] = await auditEventsOf(owner.orgId, {
      action: "privacy.erasure_refused",
      targetId: request.id,
    });
    expect(refusal?.metadata).toMatchObject({ reason: "audit_damaged", seqs: [3] });
    expect((await verifyChainReport(owner.orgId)).text).toMatch(
      /seq 3 \(event id \d+\): personal fields do not match their MAC/,
    );

    // An untouched chain is erased as before: dave's address becomes his pseudonym.
    const clean = await createOwner("tamper-erase-clean");
    await seed(clean.orgId, 6, 1);
    const dave = await erase(clean, "dave@example.test");
    expect(dave.result).toMatchObject({
      kind: "erased",
      receipt: { chainVerification: { intact: true } },
    });
    expect((await eventAt(clean.orgId, 5))?.personal).toEqual({
      to: [expect.stringMatching(/^erased:/)],
    });
    // Then an erased event is edited: its erasure MAC fails, and a later erasure refuses it.
    await forge(clean.orgId, 5);
    const again = await erase(clean, "mallory@evil.test");
    expect(again.result).toMatchObject({
      kind: "refused",
      reason: expect.stringMatching(/Events: seq 5\./),
    });
    expect((await eventAt(clean.orgId, 5))?.actorLabel).toBe("mallory@evil.test");
    expect((await verifyChainReport(clean.orgId)).text).toMatch(
      /seq 5 \(event id \d+\): erased personal fields do not match their erasure MAC/,
    );
  }, 60_000);
});

describe("the retention purge re-hashes what it deletes", () => {
  it("refuses events made to look old before the last verified checkpoint; a genuine purge still works", async () => {
    const db = await getDb();
    const owner = await createOwner("tamper-purge");
    await seed(owner.orgId, CHECKPOINT_EVERY + 100, 0);
    // A page view verifies the chain and marks checkpoint 1000 as reached.
    expect(
      (await verifyAuditChain({ db, chain: owner.orgId, mode: "incremental" })).problem,
    ).toBeNull();
    // The attacker edits evidence at seq 500 and ages every event through the checkpoint.
    await db.execute(sql`
      update audit_events set target_id = 'nothing-to-see'
      where chain = ${owner.orgId} and seq = 500`);
    await db.execute(sql`
      update audit_events set occurred_at = '2001-01-01'
      where chain = ${owner.orgId} and seq <= ${CHECKPOINT_EVERY}`);
    const count = async (orgId: string) =>
      (
        await db
          .select({ id: auditEvents.id })
          .from(auditEvents)
          .where(eq(auditEvents.chain, orgId))
      ).length;
    const before = await count(owner.orgId);
    await expect(
      purgeAuditChain({ db, orgId: owner.orgId, before: new Date(Date.now() - 365 * DAY_MS) }),
    ).rejects.toThrow(/does not verify through seq 1000 \(seq 1: hash does not match/);
    expect(await count(owner.orgId)).toBe(before);
    const after = await verifyChainReport(owner.orgId);
    expect(after.text).toMatch(/BROKEN chain \S+ seq 1 \(event id \d+\): hash does not match/);

    // A genuine purge (every event older than the cut) removes them all and still verifies.
    const clean = await createOwner("tamper-purge-clean");
    await seed(clean.orgId, CHECKPOINT_EVERY + 100, 1);
    expect(
      (await verifyAuditChain({ db, chain: clean.orgId, mode: "incremental" })).problem,
    ).toBeNull();
    const removed = await purgeAuditChain({
      db,
      orgId: clean.orgId,
      before: new Date(Date.now() + DAY_MS),
    });
    expect(removed).toBe(CHECKPOINT_EVERY + 101);
    expect(await count(clean.orgId)).toBe(1);
    expect(await verifyChainReport(clean.orgId)).toMatchObject({ code: 0 });
  }, 120_000);
});
