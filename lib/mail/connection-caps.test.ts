import { sql } from "drizzle-orm";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { getDb } from "@/db";
import { claimConnectionSlot, countLeasedSlots } from "@/db/queries/connection-slots";
import type { MemberContext } from "@/lib/auth/context";
import { ensureDemoCertificate } from "@/lib/demo";
import { startDemoSmtp } from "@/lib/demo/smtp";
import { resetMailProviders } from "@/lib/oauth/providers";
import type { Person } from "@/lib/oauth/testing/fixtures";
import { memberContext } from "@/lib/testing/context";
import { createOwner } from "@/lib/testing/factories";
import { sendMessage } from "./send";
import { connectMailbox, type SendTestbed, startSendTestbed, useRateLimits } from "./testing";
import { closeAllMailboxTransports } from "./transport";

// The connection cap through the real demo SMTP server, which answers 432 4.3.2 past three
// sessions of one mailbox the way Microsoft 365 does. Another process is played here by lease
// rows of another holder (same statements, same table); connection-caps-processes.test.ts runs
// a real second process on PostgreSQL.

let bed: SendTestbed;
let restoreLimits: () => Promise<void>;
let owner: Person;
let ctx: MemberContext;

beforeAll(async () => {
  bed = await startSendTestbed({ limits: { maxConnectionsPerMailbox: 3 } });
  restoreLimits = useRateLimits({
    oauthStart: { tokens: 1_000, window: "1 m" },
    testSend: { tokens: 10_000, window: "1 m" },
    sendMailboxMinuteDemo: { tokens: 10_000, window: "1 m" },
  });
  owner = await createOwner();
  ctx = memberContext(owner.orgId, { id: owner.user.id, email: "owner" }, "owner");
});

afterEach(async () => {
  await closeAllMailboxTransports();
  bed.useEndpoint(bed.endpoint);
});

afterAll(async () => {
  await closeAllMailboxTransports();
  resetMailProviders();
  await restoreLimits?.();
  await bed?.close();
});

function sendMany(mailbox: string, n: number, label: string) {
  return Promise.all(
    Array.from({ length: n }, (_, i) =>
      sendMessage({
        ctx,
        purpose: "dashboard_test",
        body: {
          type: "value",
          value: { mailbox, to: ["rcpt@example.test"], subject: `${label} ${i}`, text: "Hi" },
        },
      }),
    ),
  );
}

async function expireLeasesOf(holder: string) {
  const db = await getDb();
  await db.execute(
    sql`update smtp_connection_slots set lease_until = now() - interval '1 second' where holder = ${holder}`,
  );
}

describe("connection caps", () => {
  it("24 concurrent sends from one mailbox use at most 3 connections; the server refuses none and all arrive", async () => {
    const address = `caps-${Date.now()}@example.test`;
    const box = await connectMailbox(owner, address);
    const outcomes = await sendMany(box, 24, "Burst");
    expect(outcomes.map((o) => o.kind)).toEqual(Array(24).fill("sent"));
    const stats = bed.smtp.stats();
    expect(stats.peakByMailbox[address]).toBe(3);
    expect(stats.refusedConcurrent).toBe(0);
    expect(stats.acceptedByMailbox[address]).toBe(24);
    // The leases go when the connections do.
    await closeAllMailboxTransports();
    expect(await countLeasedSlots({ db: await getDb(), mailboxId: box })).toBe(0);
  });

  it("with two slots leased by another process, this one holds one connection and still sends everything", async () => {
    const address = `shared-${Date.now()}@example.test`;
    const box = await connectMailbox(owner, address);
    const db = await getDb();
    const other = `other-process-${Date.now()}`;
    for (let i = 0; i < 2; i++) {
      expect(
        await claimConnectionSlot({ db, mailboxId: box, max: 3, holder: other, leaseMs: 60_000 }),
      ).not.toBeNull();
    }
    const outcomes = await sendMany(box, 10, "Shared");
    expect(outcomes.map((o) => o.kind)).toEqual(Array(10).fill("sent"));
    expect(bed.smtp.stats().peakByMailbox[address]).toBe(1);
    expect(await countLeasedSlots({ db, mailboxId: box })).toBeLessThanOrEqual(3);
    await expireLeasesOf(other);
  });

  it("leases left by a process that died are taken over once they run out", async () => {
    const address = `dead-${Date.now()}@example.test`;
    const box = await connectMailbox(owner, address);
    const db = await getDb();
    const dead = `dead-process-${Date.now()}`;
    for (let i = 0; i < 3; i++) {
      await claimConnectionSlot({ db, mailboxId: box, max: 3, holder: dead, leaseMs: 1_500 });
    }
    // A fourth claim finds every slot taken.
    expect(
      await claimConnectionSlot({ db, mailboxId: box, max: 3, holder: "x", leaseMs: 1_000 }),
    ).toBeNull();
    const started = Date.now();
    const outcomes = await sendMany(box, 3, "After death");
    expect(outcomes.map((o) => o.kind)).toEqual(["sent", "sent", "sent"]);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1_000);
    expect(bed.smtp.stats().refusedConcurrent).toBe(0);
  });

  it("every slot held elsewhere until the deadline: a transient failure, nothing sent, mailbox connected", async () => {
    const address = `busy-${Date.now()}@example.test`;
    const box = await connectMailbox(owner, address);
    const db = await getDb();
    const other = `busy-process-${Date.now()}`;
    for (let i = 0; i < 3; i++) {
      await claimConnectionSlot({ db, mailboxId: box, max: 3, holder: other, leaseMs: 60_000 });
    }
    const outcome = await sendMessage({
      ctx,
      purpose: "dashboard_test",
      deadlineAt: Date.now() + 1_500,
      body: { type: "value", value: { mailbox: box, to: ["r@example.test"], text: "Hi" } },
    });
    expect(outcome).toMatchObject({
      kind: "provider_failed",
      failure: "transient",
      code: "connections_busy",
    });
    expect(bed.smtp.stats().acceptedByMailbox[address]).toBeUndefined();
    await expireLeasesOf(other);
  });

  it("one 432 4.3.2 costs the message one pause (250 ms) and a connection of this process", async () => {
    // A server that allows one session: the second of two concurrent sends gets 432 once.
    const { key, cert } = await ensureDemoCertificate(bed.dataDir);
    const single = await startDemoSmtp({
      port: 0,
      dataDir: bed.dataDir,
      tls: { key, cert },
      introspect: bed.oauth.introspect,
      limits: { maxConnectionsPerMailbox: 1 },
    });
    try {
      bed.useEndpoint({ ...bed.endpoint, port: single.port });
      const address = `single-${Date.now()}@example.test`;
      const box = await connectMailbox(owner, address);
      const timed = async (i: number) => {
        const started = Date.now();
        const outcome = await sendMany(box, 1, `Single ${i}`);
        return { kind: outcome[0]?.kind, ms: Date.now() - started };
      };
      const [a, b] = await Promise.all([timed(0), timed(1)]);
      expect([a?.kind, b?.kind]).toEqual(["sent", "sent"]);
      expect(single.stats().refusedConcurrent).toBe(1);
      expect(single.stats().peakByMailbox[address]).toBe(1);
      console.log(
        `[connection caps] one 432: the two sends took ${Math.min(a.ms, b.ms)} ms and ${Math.max(a.ms, b.ms)} ms`,
      );
    } finally {
      await closeAllMailboxTransports();
      await single.close();
    }
  });

  it("432 4.3.2 from a provider that counts another client's connection is retried inside the send, never shown", async () => {
    // This server allows 2 sessions while Mailwarden's cap is 3: the third AUTH gets 432.
    const { key, cert } = await ensureDemoCertificate(bed.dataDir);
    const strict = await startDemoSmtp({
      port: 0,
      dataDir: bed.dataDir,
      tls: { key, cert },
      introspect: bed.oauth.introspect,
      limits: { maxConnectionsPerMailbox: 2 },
    });
    try {
      bed.useEndpoint({ ...bed.endpoint, port: strict.port });
      const address = `strict-${Date.now()}@example.test`;
      const box = await connectMailbox(owner, address);
      const started = Date.now();
      const outcomes = await sendMany(box, 12, "Strict");
      const elapsed = Date.now() - started;
      expect(outcomes.map((o) => o.kind)).toEqual(Array(12).fill("sent"));
      const stats = strict.stats();
      expect(stats.refusedConcurrent).toBeGreaterThan(0);
      expect(stats.acceptedByMailbox[address]).toBe(12);
      console.log(
        `[connection caps] 12 sends through a 2-session server with a cap of 3: ${stats.refusedConcurrent} × 432, all sent in ${elapsed} ms`,
      );
    } finally {
      await closeAllMailboxTransports();
      await strict.close();
    }
  });
});
