import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { and, eq } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { getDb } from "@/db";
import { listActivity } from "@/db/queries/activity";
import { insertAuditEvent } from "@/db/queries/audit";
import { setAuditRetentionDays } from "@/db/queries/organization-settings";
import { auditChainAnchors, auditEvents, mailboxes } from "@/db/schema";
import { createOwner } from "@/lib/testing/factories";
import { loadActivityPage } from "./activity";
import { parseActivityQuery } from "./activity-filter";
import { exportStream, toCsv } from "./export";
import { auditChainKey } from "./key";
import { sampleRefusal } from "./refusals";
import { purgeAuditChain, runAuditRetention } from "./retention";
import { sealPending } from "./seal";
import { verifyAuditChain } from "./verify";
import { verifyAllAuditChains } from "./verify-all";
import { verifyExportFile } from "./verify-file";
import { writeAuditEvent } from "./write";

/** Inserts one unsealed event as writeAuditEvent would, at a chosen time. */
async function insertAt(orgId: string, userId: string, occurredAt: Date, i: number) {
  await insertAuditEvent({
    db: await getDb(),
    values: {
      chain: orgId,
      orgId,
      occurredAt,
      actorType: "user",
      actorId: userId,
      actorLabel: "owner@example.test",
      action: i % 2 === 0 ? "message.sent" : "message.failed",
      targetType: "message",
      targetId: `m-${i}`,
      outcome: i % 2 === 0 ? "success" : "failure",
      metadata: { i },
    },
  });
}

/** An organisation with `n` message events a second apart after `start`, all sealed. */
async function orgWithEvents(n: number, start = Date.parse("2026-03-01T00:00:00Z")) {
  const db = await getDb();
  const owner = await createOwner();
  for (let i = 0; i < n; i++)
    await insertAt(owner.orgId, owner.user.id, new Date(start + i * 1000), i);
  await sealPending({ db, chain: owner.orgId });
  return owner;
}

function query(params: Record<string, string>) {
  const parsed = parseActivityQuery(params);
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.errors));
  return parsed.query;
}

async function readAll(stream: ReadableStream<Uint8Array>) {
  return new Response(stream).text();
}

describe("activity filter in the URL", () => {
  it("names the bad field and never throws", () => {
    const bad = parseActivityQuery({ action: "nope", from: "2026-13-45", outcome: "maybe" });
    expect(bad.ok).toBe(false);
    if (bad.ok) return;
    const fields = bad.errors.map((e) => e.field).sort();
    expect(fields).toEqual(["action", "from", "outcome"]);
    const unknown = parseActivityQuery({ sort: "id" });
    expect(unknown.ok).toBe(false);
    if (!unknown.ok) expect(unknown.errors[0]?.message).toMatch(/unknown parameter sort/);
    expect(parseActivityQuery({ after: "'; drop table audit_events" }).ok).toBe(false);
  });
});

describe("activity pages", () => {
  it("pages forward and back on (occurred_at, id), stable while events arrive", {
    timeout: 120_000,
  }, async () => {
    const db = await getDb();
    const owner = await orgWithEvents(12);
    const base = query({ action: "message.sent" });
    const first = await loadActivityPage({ db, chain: owner.orgId, query: base, limit: 4 });
    expect(first.entries.map((e) => e.actionLabel)).toEqual(Array(4).fill("Message sent"));
    expect(first.newer).toBeNull();
    // A new event arrives between page views: page 2 is unchanged by it.
    await writeAuditEvent(db, {
      orgId: owner.orgId,
      actor: { type: "user", id: owner.user.id },
      action: "message.sent",
      outcome: "success",
    });
    if (!first.older) throw new Error("no next page");
    const second = await loadActivityPage({
      db,
      chain: owner.orgId,
      query: { ...base, cursor: first.older, direction: "older" },
      limit: 4,
    });
    const firstIds = first.entries.map((e) => e.id);
    const secondIds = second.entries.map((e) => e.id);
    expect(secondIds.length).toBe(2);
    expect(secondIds.some((id) => firstIds.includes(id))).toBe(false);
    expect(second.older).toBeNull();
    if (!second.newer) throw new Error("no way back");
    const back = await loadActivityPage({
      db,
      chain: owner.orgId,
      query: { ...base, cursor: second.newer, direction: "newer" },
      limit: 4,
    });
    expect(back.entries.map((e) => e.id)).toEqual(firstIds);
  });

  it("filters by date range, outcome and text, and stays inside the organisation", async () => {
    const db = await getDb();
    const owner = await orgWithEvents(6);
    const other = await orgWithEvents(6);
    const failures = await listActivity({
      db,
      chain: owner.orgId,
      filter: query({ outcome: "failure", from: "2026-03-01", to: "2026-03-01" }).filter,
      limit: 50,
    });
    expect(failures.rows.map((r) => r.outcome)).toEqual(["failure", "failure", "failure"]);
    const none = await listActivity({
      db,
      chain: owner.orgId,
      filter: query({ from: "2026-03-02", to: "2026-03-03" }).filter,
      limit: 50,
    });
    expect(none.rows).toEqual([]);
    const text = await listActivity({
      db,
      chain: owner.orgId,
      filter: query({ q: "message FAILED" }).filter,
      limit: 50,
    });
    expect(text.rows.length).toBe(3);
    const otherIds = new Set(
      (await listActivity({ db, chain: other.orgId, filter: {}, limit: 50 })).rows.map((r) => r.id),
    );
    expect(text.rows.some((r) => otherIds.has(r.id))).toBe(false);
  });

  it("shows a mailbox's address instead of its id, but not another organisation's", async () => {
    const db = await getDb();
    const owner = await createOwner();
    const other = await createOwner();
    const [box] = await db
      .insert(mailboxes)
      .values({
        orgId: other.orgId,
        provider: "demo",
        address: "secret@other.test",
        status: "connected",
      })
      .returning({ id: mailboxes.id });
    const [mine] = await db
      .insert(mailboxes)
      .values({
        orgId: owner.orgId,
        provider: "demo",
        address: "mine@owner.test",
        status: "connected",
      })
      .returning({ id: mailboxes.id });
    if (!box || !mine) throw new Error("mailbox insert");
    for (const id of [box.id, mine.id]) {
      await writeAuditEvent(db, {
        orgId: owner.orgId,
        actor: { type: "user", id: owner.user.id },
        action: "mailbox.revoked",
        target: { type: "mailbox", id },
        outcome: "success",
      });
    }
    const page = await loadActivityPage({ db, chain: owner.orgId, query: query({}) });
    const targets = page.entries.map((e) => e.target);
    expect(targets).toContain("Mailbox mine@owner.test");
    expect(targets.join(" ")).not.toContain("secret@other.test");
    expect(targets.join(" ")).not.toContain(box.id);
  });
});

describe("exports", () => {
  it("neutralises formula cells in CSV", () => {
    const csv = toCsv([['=HYPERLINK("x")', "+1", "-2", "@a", "\tx", "\rx", "plain"]]);
    expect(csv).toBe(`"'=HYPERLINK(""x"")",'+1,'-2,'@a,'\tx,"'\rx",plain\n`);
  });

  it("streams JSON Lines that audit:verify --file accepts, and rejects an edited one", async () => {
    const db = await getDb();
    const owner = await orgWithEvents(7);
    const done: unknown[] = [];
    const text = await readAll(
      exportStream({
        db,
        chain: owner.orgId,
        filter: {},
        filterParams: {},
        format: "jsonl",
        batch: 3,
        onDone: async (m, complete) => {
          done.push({ count: m.count, complete });
        },
      }),
    );
    const lines = text.trim().split("\n");
    const manifest = JSON.parse(lines[lines.length - 1] ?? "{}");
    expect(manifest).toMatchObject({ type: "manifest", count: 8, filtered: false });
    expect(manifest.first.seq).toBe(1);
    expect(manifest.last.seq).toBe(8);
    expect(done).toEqual([{ count: 8, complete: true }]);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "export-"));
    const file = path.join(dir, "export.jsonl");
    const out = {
      text: "",
      write(t: string) {
        this.text += t;
      },
    };
    fs.writeFileSync(file, text);
    expect(await verifyExportFile({ file, key: auditChainKey(), out })).toBe(0);
    // One byte of one event changed.
    fs.writeFileSync(file, text.replace('"i\\": 3', '"i\\": 4'));
    expect(text).toContain('"i\\": 3');
    expect(await verifyExportFile({ file, key: auditChainKey(), out })).toBe(1);
    expect(out.text).toMatch(/BROKEN line 5 .*hash does not match/);
    // An event dropped from an unfiltered export breaks its links (and the manifest's count).
    fs.writeFileSync(file, [...lines.slice(0, 2), ...lines.slice(3)].join("\n"));
    expect(await verifyExportFile({ file, key: auditChainKey(), out })).toBe(1);
    // A wrong key is refused.
    fs.writeFileSync(file, text);
    expect(await verifyExportFile({ file, key: Buffer.from("x".repeat(40)), out })).toBe(1);
  });

  it("writes CSV of the filter with a header", async () => {
    const db = await getDb();
    const owner = await orgWithEvents(4);
    await writeAuditEvent(db, {
      orgId: owner.orgId,
      actor: { type: "user", id: owner.user.id, label: '=HYPERLINK("x")' },
      action: "member.invited",
      outcome: "success",
    });
    const csv = await readAll(
      exportStream({
        db,
        chain: owner.orgId,
        filter: query({ action: "member.invited" }).filter,
        filterParams: { action: "member.invited" },
        format: "csv",
      }),
    );
    const rows = csv.trim().split("\n");
    expect(rows[0]).toMatch(/^id,seq,occurred_at,/);
    expect(rows.length).toBe(2);
    expect(rows[1]).toContain(`"'=HYPERLINK(""x"")"`);
  });
});

describe("retention", () => {
  it("cuts at an anchor: verification passes after, a deletion in the rest still fails", async () => {
    const db = await getDb();
    const owner = await createOwner();
    const now = Date.now();
    // org.created (now), five events now, three events two days ahead: a cut a day ahead
    // removes the first six in seq order and keeps the three.
    for (let i = 0; i < 8; i++) {
      await insertAt(owner.orgId, owner.user.id, new Date(now + (i < 5 ? 0 : 2 * 86_400_000)), i);
    }
    await sealPending({ db, chain: owner.orgId });
    await setAuditRetentionDays({ db, orgId: owner.orgId, days: 30 });
    const result = await runAuditRetention({ db, now: new Date(now + 31 * 86_400_000) });
    expect(result).toContainEqual({ orgId: owner.orgId, removed: 6 });
    const left = await db
      .select({ seq: auditEvents.seq, action: auditEvents.action })
      .from(auditEvents)
      .where(eq(auditEvents.chain, owner.orgId))
      .orderBy(auditEvents.seq);
    expect(left.map((r) => r.seq)).toEqual([7, 8, 9, 10]);
    expect(left[3]?.action).toBe("audit.purged");
    const out = {
      text: "",
      write(t: string) {
        this.text += t;
      },
    };
    expect(await verifyAllAuditChains({ db, chain: owner.orgId, out, err: out })).toBe(0);
    // A second run finds nothing more to purge (the young events and the purge event stay).
    expect(
      await purgeAuditChain({ db, orgId: owner.orgId, before: new Date(now + 86_400_000) }),
    ).toBe(0);
    // Deleting from the middle of what remains is still a gap.
    await db
      .delete(auditEvents)
      .where(and(eq(auditEvents.chain, owner.orgId), eq(auditEvents.seq, 8)));
    const report = await verifyAuditChain({ db, chain: owner.orgId, mode: "full" });
    expect(report.problem?.reason).toMatch(/missing/);
  });

  it("without its anchor the purged start reads as deleted events", async () => {
    const db = await getDb();
    const owner = await createOwner();
    const now = Date.now();
    for (let i = 0; i < 4; i++) await insertAt(owner.orgId, owner.user.id, new Date(now), i);
    await sealPending({ db, chain: owner.orgId });
    expect(await purgeAuditChain({ db, orgId: owner.orgId, before: new Date(now + 60_000) })).toBe(
      5,
    );
    expect((await verifyAuditChain({ db, chain: owner.orgId, mode: "full" })).problem).toBeNull();
    await db.delete(auditChainAnchors).where(eq(auditChainAnchors.chain, owner.orgId));
    const report = await verifyAuditChain({ db, chain: owner.orgId, mode: "full" });
    expect(report.problem?.reason).toMatch(/missing/);
  });
});

describe("refusal sampling", () => {
  it("lets one refusal per key and window through, counting the rest", () => {
    const tracker = new Map();
    expect(sampleRefusal(tracker, "203.0.113.1", 60_000, 0)).toEqual({ suppressedBefore: 0 });
    for (let i = 0; i < 1000; i++)
      expect(sampleRefusal(tracker, "203.0.113.1", 60_000, i)).toBeNull();
    expect(sampleRefusal(tracker, "203.0.113.2", 60_000, 5)).toEqual({ suppressedBefore: 0 });
    expect(sampleRefusal(tracker, "203.0.113.1", 60_000, 60_001)).toEqual({
      suppressedBefore: 1000,
    });
  });
});
