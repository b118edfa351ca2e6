import { randomUUID } from "node:crypto";
import { eq, inArray, sql } from "drizzle-orm";
import { PgDialect } from "drizzle-orm/pg-core";
import { describe, expect, it } from "vitest";
import { POST } from "@/app/api/v1/messages/route";
import { getDb, retryingDeadlocks } from "@/db";
import { groupedOutcomesStatement } from "@/db/queries/message-outcomes";
import { claimMessage } from "@/db/queries/messages";
import { messageClaims, messages, webhookDeliveries } from "@/db/schema";
import { auditEventsOf } from "@/lib/testing/audit";
import { keyContext } from "@/lib/testing/context";
import { type Delivery, type Mailbox, recordDelivery } from "./delivery";
import { connectMailbox, makeApiKey, sendRequest } from "./testing";
import { useOutcomeTestbed } from "./testing-outcomes";

// The send path's two writes (the `sending` row, the outcome) are grouped across sends that
// write at the same time (db/grouped.ts): one statement, one commit for the group. Rows written
// by one statement share a transaction id (`xmin`), which is how these tests see a group. Each
// send must still be recorded as its own, and fail only for its own reason.

const testbed = useOutcomeTestbed();

async function transactionsOf(table: "messages" | "message_claims", ids: string[]) {
  const db = await getDb();
  const column = table === "messages" ? messages.id : messageClaims.messageId;
  const rows = await db
    .select({ xid: sql<string>`xmin::text` })
    .from(table === "messages" ? messages : messageClaims)
    .where(inArray(column, ids));
  return new Set(rows.map((r) => r.xid)).size;
}

async function webhookCount(messageId: string) {
  const rows = await (await getDb())
    .select({ id: webhookDeliveries.id })
    .from(webhookDeliveries)
    .where(sql`${webhookDeliveries.body} like ${`%${messageId}%`}`);
  return rows.length;
}

function claimInput(overrides: Partial<Parameters<typeof claimMessage>[0]> = {}) {
  return {
    orgId: testbed.owner.orgId,
    mailboxId: null as unknown as string,
    sender: { type: "api_key" as const, id: `key-${randomUUID()}` },
    recipients: { to: ["rcpt@example.test"], cc: [], bcc: [] },
    subject: `grouped ${randomUUID()}`,
    idempotencyKey: null,
    requestHash: "h",
    leaseSeconds: 60,
    ...overrides,
  };
}

/** A send's outcome as the send path records it, for message `messageId` claimed by `claimId`. */
async function recordOutcome(
  mailboxId: string,
  messageId: string,
  claimId: string,
  delivery: Delivery = {
    ok: true,
    messageId: `<${randomUUID()}@example.test>`,
    smtpResponse: "250 OK",
  },
) {
  return recordDelivery(await getDb(), {
    ctx: keyContext(testbed.owner.orgId, { id: "key-grouped" }),
    purpose: "api",
    mailbox: { id: mailboxId, provider: "demo", address: "box@example.test" } as Mailbox,
    messageId,
    claimId,
    recipientCount: 1,
    delivery,
  });
}

describe("grouped writes on the send path", () => {
  it("sends at the same time share their statements and are each recorded as their own", async () => {
    const mailboxId = await connectMailbox(testbed.owner);
    const { token } = await makeApiKey(testbed.owner);
    const before = await testbed.bed.inboxCount();
    const responses = await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        POST(
          sendRequest(
            { mailbox: mailboxId, to: ["rcpt@example.test"], subject: `G${i}`, text: "hi" },
            { token },
          ),
        ),
      ),
    );
    expect(responses.map((r) => r.status)).toEqual(Array(12).fill(201));
    const ids = await Promise.all(
      responses.map(async (r) => ((await r.json()) as { id: string }).id),
    );
    expect(new Set(ids).size).toBe(12);
    expect(await testbed.bed.inboxCount()).toBe(before + 12);

    const db = await getDb();
    const rows = await db.select().from(messages).where(inArray(messages.id, ids));
    expect(rows.map((r) => r.status)).toEqual(Array(12).fill("sent"));
    for (const id of ids) {
      const events = await auditEventsOf(testbed.owner.orgId, { targetId: id });
      expect(events.map((e) => e.action)).toEqual(["message.sent"]);
      expect(await webhookCount(id)).toBe(1);
    }
  });

  it("a claim that breaks a constraint fails alone; a taken Idempotency-Key is claimed once", async () => {
    const db = await getDb();
    const sender = { type: "api_key" as const, id: `key-${randomUUID()}` };
    const key = `idem-${randomUUID()}`;
    const results = await Promise.allSettled([
      claimMessage({ db, ...claimInput() }),
      claimMessage({ db, ...claimInput({ orgId: `no-such-org-${randomUUID()}` }) }),
      claimMessage({ db, ...claimInput({ sender, idempotencyKey: key }) }),
      claimMessage({ db, ...claimInput({ sender, idempotencyKey: key }) }),
      claimMessage({ db, ...claimInput() }),
    ]);
    expect(results.map((r) => r.status)).toEqual([
      "fulfilled",
      "rejected",
      "fulfilled",
      "fulfilled",
      "fulfilled",
    ]);
    const claimed = results.flatMap((r) => (r.status === "fulfilled" && r.value ? [r.value] : []));
    // The two with one key: exactly one claim, the other told null (it replays the first).
    expect(claimed).toHaveLength(3);
    const rows = await db
      .select({ status: messages.status, claimId: messages.claimId })
      .from(messages)
      .where(
        inArray(
          messages.id,
          claimed.map((c) => c.id),
        ),
      );
    expect(rows.map((r) => r.status)).toEqual(["sending", "sending", "sending"]);
    expect(new Set(rows.map((r) => r.claimId))).toEqual(new Set(claimed.map((c) => c.claimId)));
  });

  it("an outcome whose claim is no longer the attempt's is not recorded; the others are", async () => {
    const db = await getDb();
    const mailboxId = await connectMailbox(testbed.owner);
    const claims = await Promise.all(
      [0, 1, 2].map(() => claimMessage({ db, ...claimInput({ mailboxId }) })),
    );
    const [a, stale, c] = claims.map((claim) => {
      if (!claim) throw new Error("not claimed");
      return claim;
    }) as [
      NonNullable<(typeof claims)[0]>,
      NonNullable<(typeof claims)[0]>,
      NonNullable<(typeof claims)[0]>,
    ];
    // Claimed in one turn: one statement.
    expect(await transactionsOf("message_claims", [a.id, stale.id, c.id])).toBe(1);
    await Promise.all([
      recordOutcome(mailboxId, a.id, a.claimId),
      recordOutcome(mailboxId, stale.id, randomUUID()),
      recordOutcome(mailboxId, c.id, c.claimId),
    ]);

    const rows = await db
      .select({ id: messages.id, status: messages.status })
      .from(messages)
      .where(inArray(messages.id, [a.id, stale.id, c.id]));
    const statusOf = (id: string) => rows.find((r) => r.id === id)?.status;
    expect([statusOf(a.id), statusOf(stale.id), statusOf(c.id)]).toEqual([
      "sent",
      "sending",
      "sent",
    ]);
    for (const [claim, expected] of [
      [a, ["message.sent"]],
      [stale, []],
      [c, ["message.sent"]],
    ] as const) {
      const events = await auditEventsOf(testbed.owner.orgId, { targetId: claim.id });
      expect(events.map((e) => e.action)).toEqual(expected);
      expect(await webhookCount(claim.id)).toBe(expected.length);
    }
    // The two outcomes were one statement.
    expect(await transactionsOf("messages", [a.id, c.id])).toBe(1);
  });

  it("a stale outcome of the same message in one group is not recorded with the real one", async () => {
    const db = await getDb();
    const mailboxId = await connectMailbox(testbed.owner);
    const claim = await claimMessage({ db, ...claimInput({ mailboxId }) });
    if (!claim) throw new Error("not claimed");
    await Promise.all([
      recordOutcome(mailboxId, claim.id, claim.claimId),
      // An earlier attempt whose lease ran out, finishing in the same turn.
      recordOutcome(mailboxId, claim.id, randomUUID(), {
        ok: false,
        failure: {
          kind: "transient",
          code: "smtp_421",
          smtpResponse: "421 4.7.0 Try again later",
          cause: "busy",
        },
      }),
    ]);
    const [row] = await db.select().from(messages).where(eq(messages.id, claim.id));
    expect(row?.status).toBe("sent");
    const events = await auditEventsOf(testbed.owner.orgId, { targetId: claim.id });
    expect(events.map((e) => e.action)).toEqual(["message.sent"]);
    expect(await webhookCount(claim.id)).toBe(1);
  });

  it("a lone surrogate in a grouped claim is stored as the driver stores it, in its group", async () => {
    const db = await getDb();
    const claims = await Promise.all([
      claimMessage({ db, ...claimInput({ subject: "lone \ud800 surrogate" }) }),
      claimMessage({ db, ...claimInput() }),
    ]);
    const ids = claims.map((c) => {
      if (!c) throw new Error("not claimed");
      return c.id;
    });
    const [row] = await db
      .select()
      .from(messages)
      .where(eq(messages.id, ids[0] as string));
    expect(row?.subject).toBe("lone \ufffd surrogate");
    expect(await transactionsOf("messages", ids)).toBe(1);
  });

  it.skipIf(!process.env.DATABASE_URL)(
    "a transaction ended as a deadlock's victim is run again (erasure against grouped writes)",
    async () => {
      const db = await getDb();
      const claims = await Promise.all([
        claimMessage({ db, ...claimInput() }),
        claimMessage({ db, ...claimInput() }),
      ]);
      const [a, b] = claims.map((c) => {
        if (!c) throw new Error("not claimed");
        return c.id;
      }) as [string, string];
      const lock = (tx: Parameters<Parameters<typeof db.transaction>[0]>[0], id: string) =>
        tx.execute(sql`select id from messages where id = ${id} for update`);
      let runs = 0;
      const bothHold = Promise.withResolvers<void>();
      let holding = 0;
      const hold = () => {
        holding += 1;
        if (holding === 2) bothHold.resolve();
        return bothHold.promise;
      };
      // Two transactions take the same two rows in opposite orders: PostgreSQL ends one.
      const crossing = (first: string, second: string) =>
        retryingDeadlocks(() =>
          db.transaction(async (tx) => {
            runs += 1;
            const isFirstRun = runs <= 2;
            await lock(tx, first);
            if (isFirstRun) await hold();
            await lock(tx, second);
          }),
        );
      const results = await Promise.allSettled([crossing(a, b), crossing(b, a)]);
      expect(results.map((r) => r.status)).toEqual(["fulfilled", "fulfilled"]);
      expect(runs).toBe(3);
    },
  );
});

describe("the grouped outcome's plan", () => {
  it("finds a group's messages by primary key, not by reading the whole table", async () => {
    const db = await getDb();
    // Thousands of rows: enough for the primary key to beat a scan once PostgreSQL knows the
    // group is small; json_to_recordset alone is estimated at 100 rows, for which it scans.
    await db.execute(sql`insert into ${messages}
        (id, org_id, sender_type, sender_id, recipients, recipient_count, subject, status)
      select gen_random_uuid()::text, ${testbed.owner.orgId}, 'api_key', 'key-plan',
        '{"to":[],"cc":[],"bcc":[]}'::jsonb, 1, 'plan', 'sent'
      from generate_series(1, 6000)`);
    await db.execute(sql`analyze ${messages}`);
    const { sql: text, params } = new PgDialect().sqlToQuery(
      groupedOutcomesStatement(db, ["chain", "orgId", "occurredAt", "action", "outcome"]),
    );
    const values = ["'[]'", ...params.slice(1).map(() => "null")].join(", ");
    const name = `plan_${randomUUID().replaceAll("-", "")}`;
    const plan = await db.transaction(async (tx) => {
      // A prepared statement's plan for any group: the one node-postgres keeps per connection.
      await tx.execute(sql`set local plan_cache_mode = force_generic_plan`);
      await tx.execute(sql.raw(`prepare ${name} as ${text}`));
      try {
        const { rows } = (await tx.transaction((explain) =>
          explain.execute(sql.raw(`explain (format json) execute ${name}(${values})`)),
        )) as { rows: unknown[] };
        return JSON.stringify(rows);
      } finally {
        await tx.execute(sql.raw(`deallocate ${name}`));
      }
    });
    // By the group's ids, whatever the table's size (past some 25,000 rows PostgreSQL would
    // choose the primary key without them).
    expect(plan).toMatch(/"Index Name":"messages_pkey"[^{}]*"Index Cond":"\(id = ANY /);
    const scans = [...plan.matchAll(/"Node Type":"([^"]+)"[^{}]*?"Relation Name":"messages"/g)];
    expect(scans.map((m) => m[1])).not.toContain("Seq Scan");
  });
});
