import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import path from "node:path";
import { createInterface } from "node:readline";
import { and, asc, eq, isNull, sql } from "drizzle-orm";
import { describe, expect, it, vi } from "vitest";
import { getDb } from "@/db";
import { auditEvents } from "@/db/schema";
import { createOwner } from "@/lib/testing/factories";
import { CHECKPOINT_EVERY } from "./chain";
import { FAILED_CHAIN_REST_MS, sealPending } from "./seal";
import { verifyAuditChain } from "./verify";
import { describeProblem, verifyAllAuditChains } from "./verify-all";
import { writeAuditEvent } from "./write";

async function chainRows(orgId: string) {
  const db = await getDb();
  return db
    .select({ id: auditEvents.id, seq: auditEvents.seq, action: auditEvents.action })
    .from(auditEvents)
    .where(eq(auditEvents.chain, orgId))
    .orderBy(asc(auditEvents.id));
}

/** An organisation whose chain holds org.created, then two fully populated sealed events. */
async function sealedChain() {
  const db = await getDb();
  const owner = await createOwner();
  for (const n of [1, 2]) {
    await writeAuditEvent(db, {
      orgId: owner.orgId,
      actor: { type: "user", id: owner.user.id, label: "owner@example.test" },
      action: "message.sent",
      target: { type: "message", id: `message-${n}` },
      outcome: "success",
      request: { ip: "203.0.113.7", userAgent: "curl/8.0" },
      metadata: { n, mailbox: "box", email: "person@example.test" },
    });
  }
  await sealPending({ db, chain: owner.orgId });
  const rows = await chainRows(owner.orgId);
  const middle = rows.find((r) => r.seq === 2);
  if (!middle) throw new Error("no event at seq 2");
  return { ...owner, rows, middle };
}

async function query<T>(statement: string): Promise<T[]> {
  const db = await getDb();
  return ((await db.execute(sql.raw(statement))) as unknown as { rows: T[] }).rows;
}

/** The value with its first character changed. */
function flip(column: string) {
  return `case when left(${column}, 1) = 'a' then 'b' else 'a' end || substr(${column}, 2)`;
}

// One case per stored column: each changes a single value of the event at seq 2.
const COLUMNS: { column: string; type: string; tamper: (other: string) => string }[] = [
  { column: "id", type: "bigint", tamper: () => "id + 1000000000" },
  { column: "chain", type: "text", tamper: () => flip("chain") },
  { column: "seq", type: "integer", tamper: () => "seq + 1000" },
  { column: "org_id", type: "text", tamper: (other) => `'${other}'` },
  {
    column: "occurred_at",
    type: "timestamptz",
    tamper: () => "occurred_at + interval '1 microsecond'",
  },
  { column: "actor_type", type: "text", tamper: () => flip("actor_type") },
  { column: "actor_id", type: "text", tamper: () => flip("actor_id") },
  { column: "actor_label", type: "text", tamper: () => flip("actor_label") },
  { column: "action", type: "text", tamper: () => "'message.failed'" },
  { column: "target_type", type: "text", tamper: () => flip("target_type") },
  { column: "target_id", type: "text", tamper: () => flip("target_id") },
  { column: "outcome", type: "audit_outcome", tamper: () => "'failure'" },
  { column: "ip", type: "text", tamper: () => "'203.0.113.8'" },
  { column: "user_agent", type: "text", tamper: () => flip("user_agent") },
  { column: "metadata", type: "jsonb", tamper: () => `jsonb_set(metadata, '{n}', '3')` },
  {
    column: "personal",
    type: "jsonb",
    tamper: () => `jsonb_set(personal, '{email}', '"someone@example.test"')`,
  },
  { column: "personal_mac", type: "text", tamper: () => flip("personal_mac") },
  // Passing an edit off as an erasure needs the key.
  { column: "personal_erased_at", type: "timestamptz", tamper: () => "now()" },
  { column: "prev_hash", type: "text", tamper: () => flip("prev_hash") },
  { column: "hash", type: "text", tamper: () => flip("hash") },
];

describe("audit chain verification", () => {
  it.each(COLUMNS)("detects a change to $column of a sealed event and names it", async (c) => {
    const db = await getDb();
    const { orgId, middle } = await sealedChain();
    const other = await createOwner("other");
    expect((await verifyAuditChain({ db, chain: orgId, mode: "full" })).problem).toBeNull();

    const [original] = await query<{ v: string }>(
      `select ${c.column}::text as v from audit_events where id = ${middle.id}`,
    );
    const [changed] = await query<{ id: string; v: string }>(
      `update audit_events set ${c.column} = ${c.tamper(other.orgId)} where id = ${middle.id} returning id::text, ${c.column}::text as v`,
    );
    expect(changed?.v).not.toBe(original?.v);

    for (const mode of ["full", "incremental"] as const) {
      const { problem } = await verifyAuditChain({ db, chain: orgId, mode });
      expect(problem, mode).not.toBeNull();
      const named =
        problem?.seq === 2 ||
        Number(problem?.id) === Number(changed?.id) ||
        problem?.reason.includes("seq 2 ");
      expect(named, problem ? describeProblem(problem) : "").toBe(true);
    }

    await query(
      `update audit_events set ${c.column} = ${original?.v == null ? "null" : `'${original.v}'`}::${c.type} where id = ${changed?.id}`,
    );
    expect((await verifyAuditChain({ db, chain: orgId, mode: "full" })).problem).toBeNull();
  });

  it("detects that the newest event was deleted", async () => {
    const db = await getDb();
    const { orgId, rows } = await sealedChain();
    const newest = rows.at(-1);
    expect(newest?.seq).toBe(3);
    await db.delete(auditEvents).where(eq(auditEvents.id, newest?.id ?? 0));

    for (const mode of ["full", "incremental"] as const) {
      const { problem } = await verifyAuditChain({ db, chain: orgId, mode });
      expect(problem).toMatchObject({ chain: orgId, seq: 3 });
      expect(problem?.reason).toMatch(/newest events deleted/);
    }
  });

  it("page views verify from the last verified checkpoint, not from genesis", async () => {
    const db = await getDb();
    const { orgId, user } = await createOwner();
    for (let i = 0; i < CHECKPOINT_EVERY + 4; i++) {
      await writeAuditEvent(db, {
        orgId,
        actor: { type: "user", id: user.id },
        action: "oauth.token_refreshed",
        outcome: "success",
        metadata: { i },
      });
    }
    await sealPending({ db, chain: orgId });

    const first = await verifyAuditChain({ db, chain: orgId, mode: "incremental" });
    expect(first).toMatchObject({ problem: null, length: CHECKPOINT_EVERY + 5 });
    expect(first.checked).toBe(CHECKPOINT_EVERY + 5);
    const second = await verifyAuditChain({ db, chain: orgId, mode: "incremental" });
    expect(second).toMatchObject({ problem: null, checked: 5 });

    // An edit behind the verified checkpoint is the full verification's job.
    await db.execute(
      sql`update audit_events set outcome = 'failure' where chain = ${orgId} and seq = 10`,
    );
    expect((await verifyAuditChain({ db, chain: orgId, mode: "incremental" })).problem).toBeNull();
    expect((await verifyAuditChain({ db, chain: orgId, mode: "full" })).problem).toMatchObject({
      seq: 10,
    });
  }, 120_000);
});

describe("the sealer", () => {
  it("seals a high-volume event in the background shortly after the write", async () => {
    const db = await getDb();
    const { orgId, user } = await createOwner();
    const [written] = await db.transaction(async (tx) => [
      await writeAuditEvent(tx, {
        orgId,
        actor: { type: "user", id: user.id },
        action: "message.sent",
        outcome: "success",
      }),
    ]);
    const unsealed = await db
      .select({ seq: auditEvents.seq })
      .from(auditEvents)
      .where(eq(auditEvents.id, written?.id ?? 0));
    expect(unsealed).toEqual([{ seq: null }]);

    const started = Date.now();
    await vi.waitFor(
      async () => {
        const [row] = await db
          .select({ seq: auditEvents.seq })
          .from(auditEvents)
          .where(eq(auditEvents.id, written?.id ?? 0));
        expect(row?.seq).toBe(2);
      },
      { timeout: 6_000, interval: 50 },
    );
    expect(Date.now() - started).toBeLessThan(6_000);
    expect((await verifyAuditChain({ db, chain: orgId, mode: "full" })).problem).toBeNull();
  });

  it("seals a rare event in its own transaction, after the pending ones before it", async () => {
    const db = await getDb();
    const { orgId, user } = await createOwner();
    const actor = { type: "user" as const, id: user.id };
    await writeAuditEvent(db, { orgId, actor, action: "message.failed", outcome: "failure" });
    await writeAuditEvent(db, { orgId, actor, action: "api_key.created", outcome: "success" });
    expect((await chainRows(orgId)).map((r) => [r.action, r.seq])).toEqual([
      ["org.created", 1],
      ["message.failed", 2],
      ["api_key.created", 3],
    ]);
  });

  it("leaves a chain that refuses to be sealed alone for a while instead of trying it at every write", async () => {
    const db = await getDb();
    const broken = await createOwner();
    const good = await createOwner();
    await db.execute(sql`delete from audit_chain_heads where chain = ${broken.orgId}`);
    const event = (orgId: string, user: { id: string }) =>
      writeAuditEvent(db, {
        orgId,
        actor: { type: "user", id: user.id },
        action: "message.sent",
        outcome: "success",
      });
    await event(broken.orgId, broken.user);
    const resting = new Map<string, number>();
    await expect(sealPending({ db, chain: broken.orgId, resting })).rejects.toThrow(
      /no head record/,
    );
    // The next write's run skips it (no statement, no error) and the others are not held up.
    expect(await sealPending({ db, chain: broken.orgId, resting })).toEqual({
      sealed: 0,
      skipped: [broken.orgId],
    });
    await event(good.orgId, good.user);
    await sealPending({ db, chain: good.orgId, resting });
    expect((await chainRows(good.orgId)).every((r) => r.seq !== null)).toBe(true);
    // Once the rest is over it is tried again, and still refused until someone repairs it.
    vi.useFakeTimers({ toFake: ["Date"] });
    try {
      vi.setSystemTime(Date.now() + FAILED_CHAIN_REST_MS + 1);
      await expect(sealPending({ db, chain: broken.orgId, resting })).rejects.toThrow(
        /no head record/,
      );
    } finally {
      vi.useRealTimers();
    }
    expect((await chainRows(broken.orgId)).filter((r) => r.seq === null)).toHaveLength(1);
  });

  it("refuses to extend a chain whose head record was deleted", async () => {
    const db = await getDb();
    const { orgId, user } = await createOwner();
    await db.execute(sql`delete from audit_chain_heads where chain = ${orgId}`);
    await writeAuditEvent(db, {
      orgId,
      actor: { type: "user", id: user.id },
      action: "message.sent",
      outcome: "success",
    });
    await expect(sealPending({ db, chain: orgId })).rejects.toThrow(/no head record/);
    const pending = await db
      .select({ id: auditEvents.id })
      .from(auditEvents)
      .where(and(eq(auditEvents.chain, orgId), isNull(auditEvents.seq)));
    expect(pending).toHaveLength(1);
    expect((await verifyAuditChain({ db, chain: orgId, mode: "full" })).problem?.reason).toMatch(
      /no head record/,
    );
  });
});

function collect() {
  let textOut = "";
  return {
    write: (chunk: string) => {
      textOut += chunk;
    },
    text: () => textOut,
  };
}

function runVerifyScript(args: string[]) {
  const child = spawn(
    "npx",
    ["tsx", "--conditions=react-server", path.join("scripts", "audit-verify.ts"), ...args],
    { env: process.env, stdio: ["ignore", "pipe", "pipe"] },
  );
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk) => {
    stdout += chunk;
  });
  child.stderr.on("data", (chunk) => {
    stderr += chunk;
  });
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    child.once("exit", (code) => resolve({ code, stdout, stderr }));
  });
}

describe("npm run audit:verify", () => {
  it("returns 0 on an intact chain and 1 naming the event on a tampered one", async () => {
    const db = await getDb();
    const { orgId, middle } = await sealedChain();
    const out = collect();
    const err = collect();
    expect(await verifyAllAuditChains({ db, chain: orgId, out, err })).toBe(0);
    expect(out.text()).toMatch(/intact: 1 chains, 3 events/);
    expect(err.text()).toMatch(/verified 3\/3 events \(100%\), \d+ events\/s/);

    await db.execute(
      sql`update audit_events set actor_label = 'someone else' where id = ${middle.id}`,
    );
    const after = collect();
    expect(await verifyAllAuditChains({ db, chain: orgId, out: after, err: collect() })).toBe(1);
    expect(after.text()).toContain(
      `BROKEN chain ${orgId} seq 2 (event id ${middle.id}): personal fields do not match`,
    );
  });

  it.runIf(process.env.DATABASE_URL)(
    "the command exits 0 when intact and 1 naming the event when tampered",
    async () => {
      const db = await getDb();
      const { orgId, middle } = await sealedChain();
      const intact = await runVerifyScript(["--chain", orgId]);
      expect(intact).toMatchObject({ code: 0 });
      expect(intact.stdout).toMatch(/intact/);
      expect(intact.stderr).toMatch(/\(100%\)/);

      await db.execute(sql`update audit_events set org_id = null where id = ${middle.id}`);
      const tampered = await runVerifyScript(["--chain", orgId]);
      expect(tampered.code).toBe(1);
      expect(tampered.stdout).toContain(`seq 2 (event id ${middle.id})`);
    },
    60_000,
  );

  it.skipIf(process.env.DATABASE_URL)(
    "says plainly that the embedded database is in use by the running app",
    async () => {
      await getDb();
      const result = await runVerifyScript([]);
      expect(result.code).not.toBe(0);
      expect(result.stderr).toMatch(/in use by another process/);
    },
    60_000,
  );
});

// PGlite is one process per data folder, so the cross-process race needs PostgreSQL.
describe.skipIf(!process.env.DATABASE_URL)("two processes writing one chain", () => {
  function startWorker(settings: { orgId: string; count: number; writers: number; label: string }) {
    const child = spawn(
      "npx",
      ["tsx", "--conditions=react-server", path.join("lib", "audit", "testing", "seal-worker.ts")],
      {
        env: { ...process.env, MAILWARDEN_SEAL_RACE: JSON.stringify(settings) },
        stdio: ["pipe", "pipe", "pipe"],
      },
    ) as ChildProcessWithoutNullStreams;
    let stderr = "";
    child.stderr.on("data", (chunk) => {
      stderr += chunk;
    });
    const lines = createInterface({ input: child.stdout });
    const ready = new Promise<void>((resolve, reject) => {
      lines.on("line", (line) => line === "ready" && resolve());
      child.once("exit", (code) => reject(new Error(`worker exited (${code}): ${stderr}`)));
    });
    const result = new Promise<{ written: number; sealed: number }>((resolve, reject) => {
      lines.on("line", (line) => line.startsWith("{") && resolve(JSON.parse(line)));
      child.once(
        "exit",
        (code) => code !== 0 && reject(new Error(`worker failed (${code}): ${stderr}`)),
      );
    });
    return { ready, result, go: () => child.stdin.write("go\n") };
  }

  it("leaves seq 1..2N+1 with no gap and no fork", async () => {
    const db = await getDb();
    const { orgId } = await createOwner();
    const count = 300;
    const workers = ["a", "b"].map((label) => startWorker({ orgId, count, writers: 10, label }));
    await Promise.all(workers.map((w) => w.ready));
    for (const w of workers) w.go();
    const results = await Promise.all(workers.map((w) => w.result));
    await sealPending({ db, chain: orgId });

    const rows = await chainRows(orgId);
    expect(rows).toHaveLength(2 * count + 1);
    expect(rows.map((r) => r.seq).sort((a, b) => (a ?? 0) - (b ?? 0))).toEqual(
      Array.from({ length: 2 * count + 1 }, (_, i) => i + 1),
    );
    // Both processes did seal: the work was shared, not left to this one.
    expect(results.every((r) => r.sealed > 0)).toBe(true);
    const report = await verifyAuditChain({ db, chain: orgId, mode: "full" });
    expect(report).toMatchObject({ problem: null, length: 2 * count + 1, checked: 2 * count + 1 });
  }, 120_000);
});
