import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { getDb } from "@/db";
import { insertAuditEvent } from "@/db/queries/audit";
import { createOwner } from "@/lib/testing/factories";
import { exportStream } from "./export";
import { auditChainKey } from "./key";
import { sealPending } from "./seal";
import { verifyExportFile } from "./verify-file";

type Line = Record<string, unknown> & {
  seq?: number | null;
  hash?: string | null;
  count?: number;
  sealed?: number;
  unsealed?: number;
};

async function insertEvent(orgId: string, i: number, label = "alice@example.test") {
  await insertAuditEvent({
    db: await getDb(),
    values: {
      chain: orgId,
      orgId,
      occurredAt: new Date(),
      actorType: "user",
      actorId: null,
      actorLabel: label,
      action: "message.sent",
      targetType: "message",
      targetId: `m-${i}`,
      outcome: "success",
      metadata: { i },
    },
  });
}

/** A real JSON Lines export of an organisation with org.created and seven sealed sends. */
async function exported({ unsealed = 0 } = {}) {
  const db = await getDb();
  const owner = await createOwner();
  for (let i = 0; i < 7; i++) await insertEvent(owner.orgId, i);
  await sealPending({ db, chain: owner.orgId });
  for (let i = 0; i < unsealed; i++) await insertEvent(owner.orgId, 100 + i);
  const stream = exportStream({
    db,
    chain: owner.orgId,
    filter: {},
    filterParams: {},
    format: "jsonl",
  });
  const text = await new Response(stream).text();
  const lines = text
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as Line);
  const manifest = lines.pop() as Line;
  return { text, events: lines, manifest };
}

async function verify(content: string) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "manifest-"));
  const file = path.join(dir, "export.jsonl");
  fs.writeFileSync(file, content);
  const out = {
    text: "",
    write(t: string) {
      this.text += t;
    },
  };
  const code = await verifyExportFile({ file, key: auditChainKey(), out });
  fs.rmSync(dir, { recursive: true });
  return { code, text: out.text };
}

const write = (lines: Line[]) => `${lines.map((l) => JSON.stringify(l)).join("\n")}\n`;
const sealOf = (e: Line | undefined) => ({ seq: e?.seq, hash: e?.hash });

describe("a downloaded export checked offline", () => {
  it("an untouched export verifies", async () => {
    const { text, manifest } = await exported({ unsealed: 2 });
    expect(manifest).toMatchObject({ count: 10, sealed: 8, unsealed: 2 });
    const result = await verify(text);
    expect(result.text).toMatch(/^intact: 10 events \(8 sealed\)/);
    expect(result.code).toBe(0);
  });

  it("(a) the newest event edited and passed off as unsealed, manifest restated: broken", async () => {
    const { events, manifest } = await exported();
    const edited = events.map((e) => ({ ...e }));
    const newest = edited[edited.length - 1] as Line;
    Object.assign(newest, {
      action: "member.removed",
      actorLabel: "mallory@evil.test",
      seq: null,
      hash: null,
      prevHash: null,
    });
    const restated = {
      ...manifest,
      sealed: (manifest.sealed ?? 0) - 1,
      unsealed: (manifest.unsealed ?? 0) + 1,
      last: sealOf(edited[edited.length - 2]),
    };
    // The manifest is checked first, before any event is read.
    const result = await verify(write([...edited, restated]));
    expect(result.code).toBe(1);
    expect(result.text).toMatch(/^BROKEN manifest: fails its MAC/);
    // The manifest left as signed: a row with part of its seal removed is refused as such.
    const partly = await verify(write([...edited, manifest]));
    expect(partly.code).toBe(1);
    expect(partly.text).toMatch(/BROKEN line 8: partly sealed/);
    // Its personal MAC nulled too, so the row looks wholly unsealed: the counts no longer match.
    newest.personalMac = null;
    const rowOnly = await verify(write([...edited, manifest]));
    expect(rowOnly.code).toBe(1);
    expect(rowOnly.text).toMatch(/BROKEN manifest: says 8 events \(8 sealed, 0 unsealed\)/);
  });

  it("(b) events deleted from the middle and the export called filtered: broken", async () => {
    const { events, manifest } = await exported();
    const kept = events.filter((e) => !((e.seq ?? 0) >= 3 && (e.seq ?? 0) <= 5));
    expect(kept).toHaveLength(5);
    const result = await verify(
      write([
        ...kept,
        {
          ...manifest,
          filtered: true,
          count: (manifest.count ?? 0) - 3,
          sealed: (manifest.sealed ?? 0) - 3,
        },
      ]),
    );
    expect(result.code).toBe(1);
    expect(result.text).toMatch(/BROKEN manifest: fails its MAC/);
  });

  it("(c) the newest three events cut and the manifest restated: broken", async () => {
    const { events, manifest } = await exported();
    const kept = events.slice(0, -3);
    const result = await verify(
      write([
        ...kept,
        {
          ...manifest,
          count: (manifest.count ?? 0) - 3,
          sealed: (manifest.sealed ?? 0) - 3,
          last: sealOf(kept[kept.length - 1]),
        },
      ]),
    );
    expect(result.code).toBe(1);
    expect(result.text).toMatch(/BROKEN manifest: fails its MAC/);
  });

  it("refuses a manifest without a MAC, and an edited unsealed event", async () => {
    const { events, manifest } = await exported({ unsealed: 1 });
    const { mac: _mac, ...unsigned } = manifest;
    const noMac = await verify(write([...events, unsigned]));
    expect(noMac.code).toBe(1);
    expect(noMac.text).toMatch(/BROKEN manifest: has no MAC/);
    const edited = events.map((e) =>
      e.seq === null ? { ...e, actorLabel: "mallory@evil.test" } : e,
    );
    const result = await verify(write([...edited, manifest]));
    expect(result.code).toBe(1);
    expect(result.text).toMatch(/unsealed events do not match its digest/);
  });
});
