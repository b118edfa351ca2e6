import { describe, expect, it } from "vitest";
import { getDb } from "@/db";
import { type GroupedWrite, writeGrouped } from "./grouped";

// The grouping itself, with a kind that records what it was asked to write: which writes went
// together, and what each caller was told when a group's statement failed.

type Item = { org: string; n: number };

function recordingKind(failMany?: () => Error) {
  const groups: number[][] = [];
  const alone: number[] = [];
  const kind: GroupedWrite<Item, string> = {
    groupOf: (item) => item.org,
    async one(_db, item) {
      alone.push(item.n);
      if (item.n < 0) throw new Error(`bad ${item.n}`);
      return `one ${item.n}`;
    },
    async many(_db, items) {
      groups.push(items.map((i) => i.n));
      if (failMany) throw failMany();
      return items.map((i) => `many ${i.n}`);
    },
  };
  return { kind, groups, alone };
}

describe("writeGrouped", () => {
  it("writes of one turn and one organisation go together, each told its own result", async () => {
    const db = await getDb();
    const { kind, groups, alone } = recordingKind();
    const results = await Promise.all([
      writeGrouped(db, kind, { org: "a", n: 1 }),
      writeGrouped(db, kind, { org: "b", n: 2 }),
      writeGrouped(db, kind, { org: "a", n: 3 }),
    ]);
    expect(results).toEqual(["many 1", "one 2", "many 3"]);
    expect(groups).toEqual([[1, 3]]);
    expect(alone).toEqual([2]);
  });

  it("a statement PostgreSQL refused is tried one write at a time", async () => {
    const db = await getDb();
    const refused = () => Object.assign(new Error("fk"), { code: "23503" });
    const { kind, groups, alone } = recordingKind(refused);
    const results = await Promise.allSettled([
      writeGrouped(db, kind, { org: "a", n: 1 }),
      writeGrouped(db, kind, { org: "a", n: -2 }),
      writeGrouped(db, kind, { org: "a", n: 3 }),
    ]);
    expect(results.map((r) => (r.status === "fulfilled" ? r.value : String(r.reason)))).toEqual([
      "one 1",
      "Error: bad -2",
      "one 3",
    ]);
    expect(groups).toEqual([[1, -2, 3]]);
    expect(alone.sort()).toEqual([-2, 1, 3]);
  });

  it("a statement PostgreSQL cancelled (statement timeout) is tried one write at a time too", async () => {
    const db = await getDb();
    const cancelled = () => Object.assign(new Error("canceling statement"), { code: "57014" });
    const { kind, alone } = recordingKind(cancelled);
    const results = await Promise.all([
      writeGrouped(db, kind, { org: "a", n: 1 }),
      writeGrouped(db, kind, { org: "a", n: 2 }),
    ]);
    expect(results).toEqual(["one 1", "one 2"]);
    expect(alone.sort()).toEqual([1, 2]);
  });

  it("after a lost connection nothing is written again: the group may have committed", async () => {
    const db = await getDb();
    for (const lost of [
      () => new Error("Connection terminated unexpectedly"),
      () => Object.assign(new Error("write EPIPE"), { code: "EPIPE" }),
      () => Object.assign(new Error("terminating connection"), { code: "57P01" }),
    ]) {
      const { kind, alone } = recordingKind(lost);
      const results = await Promise.allSettled([
        writeGrouped(db, kind, { org: "a", n: 1 }),
        writeGrouped(db, kind, { org: "a", n: 2 }),
      ]);
      expect(results.map((r) => r.status)).toEqual(["rejected", "rejected"]);
      expect(alone).toEqual([]);
    }
  });
});
