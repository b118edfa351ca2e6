import { randomUUID } from "node:crypto";
import { and, asc, eq, like, sql } from "drizzle-orm";
import { describe, expect, it, vi } from "vitest";
import { POST } from "@/app/api/v1/messages/route";
import { getDb } from "@/db";
import { holdQueuedMessage } from "@/db/queries/queued-messages";
import { mailboxPace, messages, webhookDeliveries } from "@/db/schema";
import { sendLimitNames } from "@/lib/ratelimit";
import { rateLimits } from "@/lib/ratelimit/runtime";
import { auditEventsOf } from "@/lib/testing/audit";
import { memberContext } from "@/lib/testing/context";
import { revokeApiKey } from "./api-keys";
import { cancelMessage } from "./queued";
import { attemptNextQueued } from "./send-queued";
import { connectMailbox, makeApiKey, sendRequest, useRateLimits } from "./testing";
import { useOutcomeTestbed } from "./testing-outcomes";

// Queued attempts racing each other, as workers of several processes do: a worker whose view of
// a message went stale while it waited for its pace slot never overwrites what another worker
// (or a member's cancel) made of it, and never sends early what another put off.

const testbed = useOutcomeTestbed();

const ownerCtx = () => memberContext(testbed.owner.orgId, testbed.owner.user, "owner");

async function setup() {
  const mailboxId = await connectMailbox(testbed.owner);
  const { token, key } = await makeApiKey(testbed.owner);
  return { mailboxId, token, key };
}

async function queue(token: string, mailboxId: string) {
  const body = { mailbox: mailboxId, to: ["rcpt@example.test"], subject: `Q ${randomUUID()}` };
  const response = await POST(
    sendRequest({ ...body, text: "hello" }, { token, headers: { prefer: "respond-async" } }),
  );
  expect(response.status).toBe(202);
  return ((await response.json()) as { id: string }).id;
}

async function row(id: string) {
  const [found] = await (await getDb()).select().from(messages).where(eq(messages.id, id));
  if (!found) throw new Error("no message row");
  return found;
}

async function paceOf(mailboxId: string) {
  const [pace] = await (await getDb())
    .select({ nextAt: mailboxPace.nextAt })
    .from(mailboxPace)
    .where(eq(mailboxPace.mailboxId, mailboxId));
  return pace?.nextAt.getTime() ?? null;
}

/**
 * Starts a worker's attempt that reads the mailbox's next due message and then waits for a pace
 * slot a few seconds off: what it read goes stale while the test acts as other workers would.
 */
async function staleAttempt(mailboxId: string) {
  const db = await getDb();
  const slot = new Date(Date.now() + 3_000);
  await db
    .insert(mailboxPace)
    .values({ mailboxId, nextAt: slot })
    .onConflictDoUpdate({ target: mailboxPace.mailboxId, set: { nextAt: slot } });
  let isDone = false;
  const attempt = attemptNextQueued(mailboxId).finally(() => {
    isDone = true;
  });
  // It has read its message once it took its slot (the pace moved on); now it sleeps.
  await vi.waitFor(async () => expect(await paceOf(mailboxId)).not.toBe(slot.getTime()), {
    timeout: 10_000,
    interval: 20,
  });
  return {
    /** The other workers' part must be over before this one wakes, or the race is not staged. */
    assertStillAsleep: () => expect(isDone).toBe(false),
    done: attempt,
  };
}

/** Lets the next attempt go at once (the stale worker's slot is its own). */
async function freePace(mailboxId: string) {
  await (await getDb()).delete(mailboxPace).where(eq(mailboxPace.mailboxId, mailboxId));
}

async function outcomeEvents(messageId: string) {
  const events = await auditEventsOf(testbed.owner.orgId, { targetId: messageId });
  return events.map((e) => e.action).filter((a) => a.startsWith("message."));
}

async function webhookTypes(messageId: string) {
  const rows = await (await getDb())
    .select({ type: webhookDeliveries.eventType })
    .from(webhookDeliveries)
    .where(
      and(
        eq(webhookDeliveries.orgId, testbed.owner.orgId),
        like(webhookDeliveries.body, `%${messageId}%`),
      ),
    )
    .orderBy(asc(webhookDeliveries.createdAt), asc(webhookDeliveries.id));
  return rows.map((r) => r.type);
}

describe("a worker whose message went stale while it waited", () => {
  it("leaves a message another worker sent as sent when its key is revoked meanwhile: no failure recorded, audited or sent to webhooks", async () => {
    const { mailboxId, token, key } = await setup();
    const id = await queue(token, mailboxId);
    const stale = await staleAttempt(mailboxId);
    // Another process's worker sends it (as after the stale worker's reservation lapsed).
    await (await getDb())
      .update(messages)
      .set({ nextAttemptAt: sql`now()` })
      .where(eq(messages.id, id));
    await freePace(mailboxId);
    expect(await attemptNextQueued(mailboxId)).toEqual({ kind: "attempted", messageId: id });
    const sent = await row(id);
    expect(sent.status).toBe("sent");
    // Then an administrator revokes the key that queued it.
    await revokeApiKey({ ctx: ownerCtx(), keyId: key.id });
    stale.assertStillAsleep();
    await stale.done;

    const after = await row(id);
    expect(after.status).toBe("sent");
    expect(after.providerMessageId).toBe(sent.providerMessageId);
    expect(after.providerMessageId).not.toBeNull();
    expect(after.sentAt?.getTime()).toBe(sent.sentAt?.getTime());
    expect(after.errorCode).toBeNull();
    expect(await outcomeEvents(id)).toEqual(["message.queued", "message.sent"]);
    expect(await webhookTypes(id)).toEqual(["message.sent"]);
  });

  it("leaves a message a member cancelled as cancelled", async () => {
    const { mailboxId, token, key } = await setup();
    const id = await queue(token, mailboxId);
    const stale = await staleAttempt(mailboxId);
    expect((await cancelMessage(ownerCtx(), id)).ok).toBe(true);
    const cancelled = await row(id);
    await revokeApiKey({ ctx: ownerCtx(), keyId: key.id });
    stale.assertStillAsleep();
    await stale.done;

    const after = await row(id);
    expect(after.status).toBe("cancelled");
    expect(after.lastError).toBe(cancelled.lastError);
    expect(after.errorCode).toBeNull();
    expect(after.sentAt).toBeNull();
    expect(await outcomeEvents(id)).toEqual(["message.queued", "message.cancelled"]);
    expect(await webhookTypes(id)).toEqual([]);
  });

  it("does not send a message another worker put off to retry later", async () => {
    const { mailboxId, token } = await setup();
    const id = await queue(token, mailboxId);
    const stale = await staleAttempt(mailboxId);
    // Another worker's attempt met a transient reply: the message retries in an hour.
    const later = new Date(Date.now() + 3_600_000);
    const db = await getDb();
    expect(
      await holdQueuedMessage({
        db,
        messageId: id,
        claimId: null,
        until: later,
        status: "retrying",
        lastError: "451 try again later",
      }),
    ).toBe(true);
    const inbox = await testbed.bed.inboxCount();
    stale.assertStillAsleep();
    await stale.done;

    const after = await row(id);
    expect(after.status).toBe("retrying");
    expect(after.nextAttemptAt?.getTime()).toBe(later.getTime());
    expect(after.attempts).toBe(0);
    expect(after.providerMessageId).toBeNull();
    expect(await testbed.bed.inboxCount()).toBe(inbox);
    expect(await outcomeEvents(id)).toEqual(["message.queued"]);
  });
});

describe("queuing a message whose audit event cannot be written", () => {
  it("answers 500 and keeps no queued message, so nothing is sent later", async () => {
    const { mailboxId, token } = await setup();
    const db = await getDb();
    // The audit store refuses this organisation's message.queued events (a real constraint;
    // NOT VALID leaves the rows already there alone).
    const constraint = sql.identifier(`mw_test_no_queued_${randomUUID().slice(0, 8)}`);
    const orgId = testbed.owner.orgId.replace(/[^A-Za-z0-9_-]/g, "");
    await db.execute(
      sql`alter table audit_events add constraint ${constraint}
        check (not (org_id = ${sql.raw(`'${orgId}'`)} and action = 'message.queued')) not valid`,
    );
    let response: Response;
    try {
      response = await POST(
        sendRequest(
          { mailbox: mailboxId, to: ["rcpt@example.test"], subject: "Refused", text: "hi" },
          { token, headers: { prefer: "respond-async" } },
        ),
      );
    } finally {
      await db.execute(sql`alter table audit_events drop constraint ${constraint}`);
    }
    expect(response.status).toBe(500);
    const rows = await db
      .select({ id: messages.id, status: messages.status })
      .from(messages)
      .where(eq(messages.mailboxId, mailboxId))
      .orderBy(asc(messages.createdAt), asc(messages.id));
    expect(rows).toEqual([]);
    const inbox = await testbed.bed.inboxCount();
    expect(await attemptNextQueued(mailboxId)).toEqual({ kind: "idle" });
    expect(await testbed.bed.inboxCount()).toBe(inbox);
  });
});

describe("two drainers of one mailbox at once (two processes' workers)", () => {
  it("attempt each message once and charge the mailbox's day limit exactly what was sent", async () => {
    const { mailboxId, token } = await setup();
    const day = sendLimitNames("demo").day;
    const restore = useRateLimits({
      oauthStart: { tokens: 1_000, window: "1 m" },
      oauthCallback: { tokens: 1_000, window: "1 m" },
      sendMailboxMinuteDemo: { tokens: 1_000, window: "1 m" },
      [day]: { tokens: 100, window: "1 d" },
    });
    try {
      const ids: string[] = [];
      for (let i = 0; i < 6; i++) ids.push(await queue(token, mailboxId));
      // Each loop is what one process's drain of the mailbox runs (this process's own guard
      // against draining a mailbox twice is not involved: another process has its own).
      const drain = async () => {
        while ((await attemptNextQueued(mailboxId)).kind === "attempted") {}
      };
      await Promise.all([drain(), drain()]);

      const rows = await (await getDb())
        .select({ id: messages.id, status: messages.status, attempts: messages.attempts })
        .from(messages)
        .where(eq(messages.mailboxId, mailboxId))
        .orderBy(asc(messages.createdAt), asc(messages.id));
      expect(rows.map((r) => r.id).sort()).toEqual([...ids].sort());
      expect(rows.map((r) => [r.status, r.attempts])).toEqual(ids.map(() => ["sent", 1]));
      // Six charged by the sends, one by this look: the limiter's count is what was sent.
      const left = await rateLimits().get(day).limit(`mailbox:${mailboxId}`);
      expect(left.remaining).toBe(100 - 6 - 1);
    } finally {
      await restore();
    }
  });
});
