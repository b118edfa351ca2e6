import { randomUUID } from "node:crypto";
import { and, eq } from "drizzle-orm";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { GET } from "@/app/api/v1/messages/[id]/route";
import { POST } from "@/app/api/v1/messages/route";
import { getDb } from "@/db";
import { apiKeys, mailboxes, messageClaims, messages } from "@/db/schema";
import { encryptField, isEncryptedValue } from "@/lib/crypto";
import { generateKeySpec, parseKeyring } from "@/lib/crypto/keyring";
import { clearSwitch, setSwitch } from "@/lib/incidents/switches";
import { resetMailProviders } from "@/lib/oauth/providers";
import type { Person } from "@/lib/oauth/testing/fixtures";
import { auditEventsOf } from "@/lib/testing/audit";
import { memberContext } from "@/lib/testing/context";
import { createOwner } from "@/lib/testing/factories";
import { restrictApiKey, revokeApiKey } from "./api-keys";
import { hashSendRequest } from "./idempotency";
import type { SendRequest } from "./message";
import { cancelMessage, drainMailbox } from "./queued";
import { INTERRUPTED_CAUSE, settleInterruptedAttempts } from "./send-queued";
import {
  clearOfMinuteTurn,
  connectMailbox,
  makeApiKey,
  type SendTestbed,
  sendRequest,
  startSendTestbed,
  useRateLimits,
} from "./testing";
import { closeAllMailboxTransports } from "./transport";

// Queued messages (`Prefer: respond-async`) through the real route, the real demo SMTP server
// and the real database: every chokepoint check runs again at the attempt, a paused sending
// holds messages instead of failing them, and an interrupted attempt is never blindly resent.

let bed: SendTestbed;
let restoreLimits: () => Promise<void>;
let owner: Person;

beforeAll(async () => {
  bed = await startSendTestbed();
  restoreLimits = useRateLimits({
    // Every test connects a mailbox of its own, all from one address within a minute or so.
    oauthStart: { tokens: 1_000, window: "1 m" },
    oauthCallback: { tokens: 1_000, window: "1 m" },
    sendMailboxMinuteDemo: { tokens: 1_000, window: "1 m" },
  });
  owner = await createOwner();
});

afterEach(() => {
  bed.behaviour = null;
});

afterAll(async () => {
  closeAllMailboxTransports();
  resetMailProviders();
  await restoreLimits?.();
  await bed?.close();
});

const ASYNC = { prefer: "respond-async" };

async function setup(person: Person = owner) {
  const mailboxId = await connectMailbox(person);
  const { token, key } = await makeApiKey(person);
  return { mailboxId, token, key };
}

function message(mailbox: string, text = `body ${randomUUID()}`) {
  return { mailbox, to: ["rcpt@example.test"], subject: `Queued ${randomUUID()}`, text };
}

async function post(token: string, body: unknown, headers: Record<string, string> = ASYNC) {
  return POST(sendRequest(body, { token, headers }));
}

async function status(token: string, id: string) {
  const response = await GET(
    new Request(`http://localhost/api/v1/messages/${id}`, {
      headers: { authorization: `Bearer ${token}`, "user-agent": "vitest" },
    }),
    { params: Promise.resolve({ id }) },
  );
  return { response, body: (await response.json()) as Record<string, unknown> };
}

async function row(id: string) {
  const [found] = await (await getDb()).select().from(messages).where(eq(messages.id, id));
  if (!found) throw new Error("no message row");
  return found;
}

async function queue(token: string, mailboxId: string, text?: string) {
  const response = await post(token, message(mailboxId, text));
  expect(response.status).toBe(202);
  return ((await response.json()) as { id: string }).id;
}

async function acceptedTimes(messageId: string | null) {
  return messageId ? (bed.smtp.stats().acceptedMessageIds.get(messageId) ?? 0) : 0;
}

describe("POST /api/v1/messages with Prefer: respond-async", () => {
  it("answers 202 with Location, keeps the body sealed until it is sent, then deletes it", async () => {
    const { mailboxId, token } = await setup();
    const text = `secret body ${randomUUID()}`;
    const response = await post(token, message(mailboxId, text));
    expect(response.status).toBe(202);
    expect(response.headers.get("preference-applied")).toBe("respond-async");
    const { id } = (await response.json()) as { id: string };
    expect(response.headers.get("location")).toBe(`/api/v1/messages/${id}`);

    const queued = await row(id);
    expect(queued.status).toBe("queued");
    expect(isEncryptedValue(queued.bodySealed ?? "")).toBe(true);
    expect(queued.bodySealed).not.toContain(text);
    const before = await status(token, id);
    expect(before.response.status).toBe(200);
    expect(before.body).toMatchObject({ id, status: "queued", error: null });
    expect(await bed.inboxCount()).toBeGreaterThanOrEqual(0);

    await drainMailbox(mailboxId);
    const sent = await row(id);
    expect(sent.status).toBe("sent");
    expect(sent.bodySealed).toBeNull();
    expect(await acceptedTimes(sent.providerMessageId)).toBe(1);
    const after = await status(token, id);
    expect(after.body).toMatchObject({ status: "sent", messageId: sent.providerMessageId });
    const events = await auditEventsOf(owner.orgId, { targetId: id });
    expect(events.map((e) => e.action)).toEqual(["message.queued", "message.sent"]);
  });

  it("refuses bad input with 400 and stores nothing", async () => {
    const { mailboxId, token } = await setup();
    const db = await getDb();
    const count = async () =>
      (await db.select().from(messages).where(eq(messages.mailboxId, mailboxId))).length;
    const response = await post(token, { mailbox: mailboxId, to: ["not an address"], text: "x" });
    expect(response.status).toBe(400);
    expect(await count()).toBe(0);
  });

  it("stays synchronous without the header", async () => {
    const { mailboxId, token } = await setup();
    const response = await post(token, message(mailboxId), {});
    expect(response.status).toBe(201);
  });

  it("answers a retry with the same Idempotency-Key with the same message, queued once", async () => {
    const { mailboxId, token } = await setup();
    const body = message(mailboxId);
    const first = await POST(
      sendRequest(body, { token, idempotencyKey: "order-1", headers: ASYNC }),
    );
    const again = await POST(
      sendRequest(body, { token, idempotencyKey: "order-1", headers: ASYNC }),
    );
    expect(first.status).toBe(202);
    expect(again.status).toBe(202);
    expect(again.headers.get("idempotent-replayed")).toBe("true");
    const id = ((await first.json()) as { id: string }).id;
    expect(((await again.json()) as { id: string }).id).toBe(id);
    const rows = await (await getDb())
      .select()
      .from(messages)
      .where(eq(messages.mailboxId, mailboxId));
    expect(rows).toHaveLength(1);
  });
});

describe("GET /api/v1/messages/{id}", () => {
  it("reads another organisation's message, or one of a mailbox the key may not use, like an unknown id", async () => {
    const { mailboxId, token } = await setup();
    const id = await queue(token, mailboxId);
    const stranger = await createOwner("stranger");
    const theirs = await makeApiKey(stranger);
    const foreign = await status(theirs.token, id);
    const unknown = await status(theirs.token, randomUUID());
    expect(foreign.response.status).toBe(404);
    expect(foreign.body).toEqual(unknown.body);

    const otherBox = await connectMailbox(owner);
    const narrow = await makeApiKey(owner, [otherBox]);
    const refused = await status(narrow.token, id);
    expect(refused.response.status).toBe(404);
    expect(refused.body).toEqual(unknown.body);
    const denied = await auditEventsOf(owner.orgId, { action: "access.denied", targetId: id });
    expect(denied).toHaveLength(1);
  });

  it("audits a key polling a message of a mailbox it may no longer use once, not at every poll", async () => {
    const { mailboxId, token } = await setup();
    const id = await queue(token, mailboxId);
    const otherBox = await connectMailbox(owner);
    const narrow = await makeApiKey(owner, [otherBox]);
    for (let i = 0; i < 50; i++) {
      expect((await status(narrow.token, id)).response.status).toBe(404);
    }
    const denied = await auditEventsOf(owner.orgId, { action: "access.denied", targetId: id });
    // Still audited, once for the minute, by the key.
    expect(denied).toHaveLength(1);
    expect(denied[0]).toMatchObject({ actorId: narrow.key.id, outcome: "denied" });
  });
});

describe("the chokepoint's checks at each queued attempt", () => {
  it("holds messages while sending is paused and sends them when it resumes", async () => {
    const { mailboxId, token } = await setup();
    const ids = [await queue(token, mailboxId), await queue(token, mailboxId)];
    const db = await getDb();
    const ctx = memberContext(owner.orgId, owner.user, "owner");
    const scope = { type: "organization" as const, orgId: owner.orgId };
    await setSwitch({ db, kind: "pause_sending", scope, reason: "queue drill", ctx });
    try {
      await drainMailbox(mailboxId);
      // Every waiting message of the mailbox is held, none failed, none sent.
      for (const id of ids) {
        const held = await row(id);
        expect(held.status).toBe("queued");
        expect(held.nextAttemptAt?.getTime()).toBeGreaterThan(Date.now());
        expect(held.providerMessageId).toBeNull();
        // The caller can see why it waits.
        const { body } = await status(token, id);
        expect(body).toMatchObject({ status: "queued", error: null });
        expect(body.heldBecause).toBe("Sending is paused by an incident switch: queue drill");
      }
    } finally {
      await clearSwitch({ db, kind: "pause_sending", scope, ctx });
    }
    await db
      .update(messages)
      .set({ nextAttemptAt: new Date() })
      .where(eq(messages.mailboxId, mailboxId));
    await drainMailbox(mailboxId);
    for (const id of ids) expect((await row(id)).status).toBe("sent");
    expect((await status(token, ids[0] as string)).body).toMatchObject({
      status: "sent",
      heldBecause: null,
    });
  });

  it("holds, never sends, a message whose attempt was waiting to retry a 454 when the pause came", async () => {
    const { mailboxId, token } = await setup();
    const id = await queue(token, mailboxId);
    const db = await getDb();
    const ctx = memberContext(owner.orgId, owner.user, "owner");
    const scope = { type: "organization" as const, orgId: owner.orgId };
    let authCalls = 0;
    // The attempt is past its checks and claimed when AUTH answers 454 with the pause on.
    bed.authOverride = async () => {
      if (++authCalls > 1) return null;
      await setSwitch({ db, kind: "pause_sending", scope, reason: "mid-retry drill", ctx });
      return { code: 454, message: "4.7.0 Temporary authentication failure" };
    };
    try {
      await drainMailbox(mailboxId);
      expect(authCalls).toBe(1);
      const held = await row(id);
      expect(held).toMatchObject({ status: "retrying", providerMessageId: expect.any(String) });
      expect(held.nextAttemptAt?.getTime()).toBeGreaterThan(Date.now());
      expect(await acceptedTimes(held.providerMessageId)).toBe(0);
    } finally {
      bed.authOverride = null;
      await clearSwitch({ db, kind: "pause_sending", scope, ctx });
    }
  });

  it("fails, never sends, what a pause held past its deadline once sending is released", async () => {
    const { mailboxId, token } = await setup();
    const id = await queue(token, mailboxId);
    const db = await getDb();
    const ctx = memberContext(owner.orgId, owner.user, "owner");
    const scope = { type: "organization" as const, orgId: owner.orgId };
    await setSwitch({ db, kind: "pause_sending", scope, reason: "leaked key", ctx });
    try {
      await drainMailbox(mailboxId);
      expect((await row(id)).status).toBe("queued");
    } finally {
      await clearSwitch({ db, kind: "pause_sending", scope, ctx });
    }
    // Days later the deadline (QUEUE_DEADLINE_HOURS) has passed; then sending is released.
    await db
      .update(messages)
      .set({ nextAttemptAt: new Date(), deadlineAt: new Date(Date.now() - 1_000) })
      .where(eq(messages.id, id));
    await drainMailbox(mailboxId);
    const failed = await row(id);
    expect(failed).toMatchObject({
      status: "failed",
      errorCode: "deadline_passed",
      bodySealed: null,
    });
    expect(failed.lastError).toMatch(
      /never sent late\. It waited because: Sending is paused by an incident switch: leaked key/,
    );
    expect(failed.providerMessageId).toBeNull();
    const events = await auditEventsOf(owner.orgId, { action: "message.failed", targetId: id });
    expect(events).toHaveLength(1);
  });

  it("holds messages of a paused mailbox", async () => {
    const { mailboxId, token } = await setup();
    const id = await queue(token, mailboxId);
    const db = await getDb();
    await db.update(mailboxes).set({ status: "paused" }).where(eq(mailboxes.id, mailboxId));
    await drainMailbox(mailboxId);
    const held = await row(id);
    expect(held.status).toBe("queued");
    expect(held.sentAt).toBeNull();
  });

  it("fails a message whose key was revoked after it was queued, sending nothing", async () => {
    const { mailboxId, token, key } = await setup();
    const id = await queue(token, mailboxId);
    await revokeApiKey({ ctx: memberContext(owner.orgId, owner.user, "owner"), keyId: key.id });
    await drainMailbox(mailboxId);
    const failed = await row(id);
    expect(failed.status).toBe("failed");
    expect(failed.lastError).toMatch(/revoked or expired/);
    expect(failed.bodySealed).toBeNull();
    expect(await acceptedTimes(failed.providerMessageId)).toBe(0);
  });

  it("fails a message whose key was deleted after it was queued (its creator erased), sending nothing", async () => {
    const { mailboxId, token, key } = await setup();
    const id = await queue(token, mailboxId);
    await (await getDb()).delete(apiKeys).where(eq(apiKeys.id, key.id));
    await drainMailbox(mailboxId);
    const failed = await row(id);
    expect(failed.status).toBe("failed");
    expect(failed.lastError).toMatch(/revoked or expired/);
    expect(failed.bodySealed).toBeNull();
    expect(await acceptedTimes(failed.providerMessageId)).toBe(0);
  });

  it("fails a message whose key may no longer use the mailbox", async () => {
    const { mailboxId, token, key } = await setup();
    const id = await queue(token, mailboxId);
    const otherBox = await connectMailbox(owner);
    await restrictApiKey({
      ctx: memberContext(owner.orgId, owner.user, "owner"),
      keyId: key.id,
      allowedMailboxIds: [otherBox],
    });
    await drainMailbox(mailboxId);
    const failed = await row(id);
    expect(failed.status).toBe("failed");
    expect(failed.lastError).toMatch(/not allowed/);
  });

  it("fails the messages of a mailbox that needs reconnecting, with its cause", async () => {
    const { mailboxId, token } = await setup();
    const id = await queue(token, mailboxId);
    const db = await getDb();
    await db
      .update(mailboxes)
      .set({ status: "needs_reconnect", lastErrorCause: "Reconnect it." })
      .where(eq(mailboxes.id, mailboxId));
    await drainMailbox(mailboxId);
    const failed = await row(id);
    expect(failed.status).toBe("failed");
    expect(failed.lastError).toBe("Reconnect it.");
  });

  it("holds a message over the mailbox's rate limit instead of failing it", async () => {
    const { mailboxId, token } = await setup();
    await clearOfMinuteTurn();
    const restore = useRateLimits({ sendMailboxMinuteDemo: { tokens: 1, window: "1 m" } });
    try {
      const first = await queue(token, mailboxId);
      const second = await queue(token, mailboxId);
      await drainMailbox(mailboxId);
      expect((await row(first)).status).toBe("sent");
      const held = await row(second);
      expect(held.status).toBe("queued");
      expect(held.nextAttemptAt?.getTime()).toBeGreaterThan(Date.now());
      expect((await status(token, second)).body.heldBecause).toBe(
        "The mailbox's rate limit (sendMailboxMinuteDemo) is reached; it is sent once the limit allows.",
      );
    } finally {
      await restore();
    }
  });

  it("meets the provider's daily limit: waits for its end when the deadline allows, else fails at once with the reason", async () => {
    const { mailboxId, token } = await setup();
    bed.behaviour = () => "quota_microsoft";
    const db = await getDb();
    const waiting = await queue(token, mailboxId);
    // The limit runs 24 hours from now (nothing sent today); this message may wait 48.
    await db
      .update(messages)
      .set({ deadlineAt: new Date(Date.now() + 48 * 3_600_000) })
      .where(eq(messages.id, waiting));
    await drainMailbox(mailboxId);
    const [box] = await db.select().from(mailboxes).where(eq(mailboxes.id, mailboxId));
    const held = await row(waiting);
    expect(held.status).toBe("retrying");
    expect(held.nextAttemptAt?.getTime()).toBe(box?.limitedUntil?.getTime());
    expect(held.lastError).toMatch(/Limit reached until/);
    expect(box?.status).toBe("connected");

    // With the default deadline (24 h) the limit would outlast it: failed now, saying why.
    await db.update(mailboxes).set({ limitedUntil: null }).where(eq(mailboxes.id, mailboxId));
    await db
      .update(messages)
      .set({ status: "cancelled", nextAttemptAt: null })
      .where(eq(messages.id, waiting));
    const doomed = await queue(token, mailboxId);
    await drainMailbox(mailboxId);
    const failed = await row(doomed);
    expect(failed.status).toBe("failed");
    expect(failed.lastError).toMatch(/daily sending limit/);
    expect(failed.bodySealed).toBeNull();
    expect(await acceptedTimes(failed.providerMessageId)).toBe(0);
  });

  it("retries a transient reply with backoff, then fails it past the deadline", async () => {
    const { mailboxId, token } = await setup();
    const id = await queue(token, mailboxId);
    bed.behaviour = () => "try_later_gmail";
    await drainMailbox(mailboxId);
    const retrying = await row(id);
    expect(retrying.status).toBe("retrying");
    expect(retrying.lastError).toBeTruthy();
    expect(retrying.nextAttemptAt?.getTime()).toBeGreaterThan(Date.now());
    const shown = await status(token, id);
    expect(shown.body).toMatchObject({ status: "retrying", nextAttemptAt: expect.any(String) });

    // The deadline has passed by the next attempt: the transient reply is now final.
    const db = await getDb();
    await db
      .update(messages)
      .set({ nextAttemptAt: new Date(), deadlineAt: new Date(Date.now() + 1_000) })
      .where(eq(messages.id, id));
    await drainMailbox(mailboxId);
    const failed = await row(id);
    expect(failed.status).toBe("failed");
    expect(failed.bodySealed).toBeNull();
  });

  it("fails a message whose connection dropped after its last byte, never resending it", async () => {
    const { mailboxId, token } = await setup();
    const id = await queue(token, mailboxId);
    bed.behaviour = () => "drop_after_data";
    await drainMailbox(mailboxId);
    await drainMailbox(mailboxId);
    const failed = await row(id);
    expect(failed).toMatchObject({ status: "failed", errorCode: "interrupted", bodySealed: null });
    expect(failed.lastError).toMatch(/may have accepted it\. Not resent/);
    // The server stored the one copy it was handed (its reply was lost), and no other; the row
    // keeps its Message-ID, to look for in Sent Items.
    expect(await acceptedTimes(failed.providerMessageId)).toBe(1);
    const shown = await status(token, id);
    expect(shown.body).toMatchObject({ status: "failed" });
  });

  it("fails a message whose body no key can open before claiming it", async () => {
    const { mailboxId, token } = await setup();
    const id = await queue(token, mailboxId);
    const dropped = parseKeyring(generateKeySpec("gone"));
    const bodySealed = encryptField(dropped, "{}", {
      table: "messages",
      column: "body_sealed",
      rowId: id,
    });
    await (await getDb()).update(messages).set({ bodySealed }).where(eq(messages.id, id));
    await drainMailbox(mailboxId);
    const failed = await row(id);
    expect(failed.status).toBe("failed");
    expect(failed.lastError).toMatch(/could not be decrypted/);
    expect(failed.providerMessageId).toBeNull();
  });

  it("cancels a waiting message: audited, never sent", async () => {
    const { mailboxId, token } = await setup();
    const id = await queue(token, mailboxId);
    const ctx = memberContext(owner.orgId, owner.user, "owner");
    expect(await cancelMessage(ctx, id)).toEqual({ ok: true });
    await drainMailbox(mailboxId);
    const cancelled = await row(id);
    expect(cancelled.status).toBe("cancelled");
    expect(cancelled.bodySealed).toBeNull();
    expect(cancelled.providerMessageId).toBeNull();
    const events = await auditEventsOf(owner.orgId, { action: "message.cancelled", targetId: id });
    expect(events).toHaveLength(1);
    expect((await cancelMessage(ctx, id)).ok).toBe(false);
  });
});

describe("an attempt interrupted by its process dying", () => {
  /** The attempt's lease as it is once its lease time has passed (written if it had none). */
  async function lapseLease(id: string) {
    const expiresAt = new Date(Date.now() - 1_000);
    await (await getDb())
      .insert(messageClaims)
      .values({ messageId: id, expiresAt })
      .onConflictDoUpdate({ target: messageClaims.messageId, set: { expiresAt } });
  }

  // The state a SIGKILL leaves: the claim committed (`sending`, Message-ID fixed), the lease
  // lapsed, with or without the SMTP conversation having happened.
  async function interrupt(id: string, messageId: string, bodySealed?: string | null) {
    const db = await getDb();
    await db
      .update(messages)
      .set({
        ...(bodySealed ? { bodySealed } : {}),
        status: "sending",
        providerMessageId: messageId,
        claimId: randomUUID(),
        nextAttemptAt: null,
        sentAt: null,
      })
      .where(eq(messages.id, id));
    await lapseLease(id);
  }

  it("demo, killed before the server accepted it: sent again once, with the same Message-ID", async () => {
    const { mailboxId, token } = await setup();
    const id = await queue(token, mailboxId);
    const messageId = `<${randomUUID()}@example.test>`;
    await interrupt(id, messageId);
    await settleInterruptedAttempts();
    expect((await row(id)).status).toBe("retrying");
    await drainMailbox(mailboxId);
    const sent = await row(id);
    expect(sent.status).toBe("sent");
    expect(sent.providerMessageId).toBe(messageId);
    expect(await acceptedTimes(messageId)).toBe(1);
  });

  it("demo, killed after the server accepted it: marked sent, not sent again", async () => {
    const { mailboxId, token } = await setup();
    const id = await queue(token, mailboxId);
    const { bodySealed } = await row(id);
    await drainMailbox(mailboxId);
    const sent = await row(id);
    const messageId = sent.providerMessageId ?? "";
    expect(await acceptedTimes(messageId)).toBe(1);
    // As if the process died between the server's 250 and the row's final update (which is
    // what deletes the body).
    await interrupt(id, messageId, bodySealed);
    await settleInterruptedAttempts();
    await drainMailbox(mailboxId);
    expect(await acceptedTimes(messageId)).toBe(1);
    const settled = await row(id);
    expect(settled.status).toBe("sent");
    expect(settled.bodySealed).toBeNull();
  });

  it("a synchronous send whose process died: failed as interrupted once its lease lapses, and a retry with its Idempotency-Key gets that answer instead of 409 for ever", async () => {
    const { mailboxId, token, key } = await setup();
    const idempotencyKey = `sync-${randomUUID()}`;
    const body = message(mailboxId);
    // The row exactly as the route's claim writes it before any SMTP traffic; the process
    // "dies" there (no final update).
    const { claimMessage } = await import("@/db/queries/messages");
    const db = await getDb();
    const claimed = await claimMessage({
      db,
      orgId: owner.orgId,
      mailboxId,
      sender: { type: "api_key", id: key.id },
      recipients: { to: body.to, cc: [], bcc: [] },
      subject: body.subject,
      idempotencyKey,
      requestHash: hashSendRequest({ ...body, cc: [], bcc: [] } as SendRequest),
      leaseSeconds: 600,
    });
    if (!claimed) throw new Error("not claimed");
    // Ten minutes later (only a lease the claim wrote can lapse).
    await lapseLease(claimed.id);
    await settleInterruptedAttempts();
    const failed = await row(claimed.id);
    expect(failed).toMatchObject({
      status: "failed",
      errorCode: "interrupted",
    });
    const events = await auditEventsOf(owner.orgId, {
      action: "message.failed",
      targetId: claimed.id,
    });
    expect(events).toHaveLength(1);
    expect(events[0]?.metadata).not.toHaveProperty("queued");
    const replay = await post(token, body, { "idempotency-key": idempotencyKey });
    expect(replay.status).toBe(502);
    const replayed = (await replay.json()) as { id: string; code: string; detail: string };
    expect(replayed).toMatchObject({ id: claimed.id, code: "interrupted" });
    expect(replayed.detail).toMatch(/may have it: check Sent Items/);
    // A send that finished keeps its lease until it lapses; the sweep then deletes the lease
    // and leaves the message as it is.
    const done = await post(token, message(mailboxId), {});
    expect(done.status).toBe(201);
    const { id } = (await done.json()) as { id: string };
    await lapseLease(id);
    await settleInterruptedAttempts();
    expect((await row(id)).status).toBe("sent");
    expect(await auditEventsOf(owner.orgId, { action: "message.failed", targetId: id })).toEqual(
      [],
    );
    const leases = await db.select().from(messageClaims).where(eq(messageClaims.messageId, id));
    expect(leases).toEqual([]);
  });

  it("Gmail or Microsoft: failed with a plain cause, never resent", async () => {
    const { mailboxId, token } = await setup();
    const id = await queue(token, mailboxId);
    await interrupt(id, `<${randomUUID()}@example.test>`);
    const db = await getDb();
    // Nobody can ask Gmail or Microsoft whether a Message-ID arrived.
    await db.update(mailboxes).set({ provider: "google" }).where(eq(mailboxes.id, mailboxId));
    try {
      await settleInterruptedAttempts();
    } finally {
      await db.update(mailboxes).set({ provider: "demo" }).where(eq(mailboxes.id, mailboxId));
    }
    const failed = await row(id);
    expect(failed.status).toBe("failed");
    expect(failed.errorCode).toBe("interrupted");
    expect(failed.lastError).toBe(INTERRUPTED_CAUSE);
    const events = await auditEventsOf(owner.orgId, { action: "message.failed", targetId: id });
    expect(events).toHaveLength(1);
    expect(
      await db
        .select()
        .from(messages)
        .where(and(eq(messages.id, id), eq(messages.status, "sending"))),
    ).toHaveLength(0);
  });
});
