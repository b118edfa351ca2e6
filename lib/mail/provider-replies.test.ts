import { and, eq } from "drizzle-orm";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { POST } from "@/app/api/v1/messages/route";
import { getDb } from "@/db";
import { auditEvents, messages } from "@/db/schema";
import type { MemberContext } from "@/lib/auth/context";
import type { DemoBehaviour } from "@/lib/demo/smtp";
import { resetMailProviders } from "@/lib/oauth/providers";
import { type Person, readMailbox } from "@/lib/oauth/testing/fixtures";
import { memberContext } from "@/lib/testing/context";
import { createOwner } from "@/lib/testing/factories";
import { sendOutcomeResult } from "./form-result";
import { sendOutcomeResponse } from "./http";
import type { SendOutcome } from "./outcomes";
import { markMailboxLimited } from "./quota";
import { sendMessage, testConnection } from "./send";
import { classifySmtpError } from "./smtp-replies";
import {
  connectMailbox,
  makeApiKey,
  type SendTestbed,
  sendRequest,
  startSendTestbed,
  useRateLimits,
} from "./testing";
import { closeAllMailboxTransports } from "./transport";

// Each provider reply of issue 12 part 2, answered by the real demo SMTP server in the
// provider's words, and what it does to the mailbox, the caller and the activity log.

const DAY_MS = 86_400_000;

let bed: SendTestbed;
let restoreLimits: () => Promise<void>;
let owner: Person;
let ctx: MemberContext;
/** How many MAIL FROM and DATA commands of a mailbox the server answered, by address. */
const asked = new Map<string, number>();

beforeAll(async () => {
  bed = await startSendTestbed({ limits: { maxConnectionsPerMailbox: 3 } });
  restoreLimits = useRateLimits({
    oauthStart: { tokens: 1_000, window: "1 m" },
    testSend: { tokens: 1_000, window: "1 m" },
    apiKey: { tokens: 1_000, window: "1 m" },
  });
  owner = await createOwner();
  ctx = memberContext(owner.orgId, { id: owner.user.id, email: "owner" }, "owner");
});

afterEach(async () => {
  bed.behaviour = null;
  await closeAllMailboxTransports();
});

afterAll(async () => {
  await closeAllMailboxTransports();
  resetMailProviders();
  await restoreLimits?.();
  await bed?.close();
});

/** The server answers `address` with `behaviour` while `when` says so, counting each time. */
function answer(
  address: string,
  behaviour: DemoBehaviour,
  when: (n: number) => boolean = () => true,
) {
  bed.behaviour = (mailbox) => {
    if (mailbox !== address) return null;
    const n = (asked.get(address) ?? 0) + 1;
    asked.set(address, n);
    return when(n) ? behaviour : null;
  };
}

function send(mailbox: string, deadlineAt?: number) {
  return sendMessage({
    ctx,
    purpose: "dashboard_test",
    ...(deadlineAt ? { deadlineAt } : {}),
    body: {
      type: "value",
      value: { mailbox, to: ["rcpt@example.test"], subject: `Test ${Date.now()}`, text: "Hi" },
    },
  });
}

function expectKind<K extends SendOutcome["kind"]>(outcome: SendOutcome, kind: K) {
  expect(outcome.kind).toBe(kind);
  return outcome as Extract<SendOutcome, { kind: K }>;
}

async function auditOf(mailboxId: string, action: string) {
  const db = await getDb();
  return db
    .select()
    .from(auditEvents)
    .where(
      and(
        eq(auditEvents.targetId, mailboxId),
        eq(auditEvents.action, action as typeof auditEvents.$inferSelect.action),
      ),
    );
}

const accepted = (address: string) => bed.smtp.stats().acceptedByMailbox[address] ?? 0;

describe("a provider's daily quota: limit reached until a time, not broken", () => {
  it("Microsoft 554 5.2.0 SubmissionQuotaExceeded: 429 with Retry-After until the oldest message of the day leaves the window; connected; audited; later sends refused before SMTP", async () => {
    const address = `quota-ms-${Date.now()}@example.test`;
    const box = await connectMailbox(owner, address);
    const first = expectKind(await send(box), "sent");
    const db = await getDb();
    const [firstRow] = await db.select().from(messages).where(eq(messages.id, first.id));
    const expectedUntil = (firstRow?.createdAt.getTime() ?? 0) + DAY_MS;

    answer(address, "quota_microsoft");
    const refused = expectKind(await send(box), "provider_failed");
    expect(refused).toMatchObject({ failure: "quota", code: "smtp_554_5.2.0" });
    expect(refused.smtpResponse).toMatch(/^554 5\.2\.0 .*SubmissionQuotaExceededException/);
    expect(refused.cause).toMatch(/daily sending limit/);
    expect(refused.cause).toMatch(/Limit reached until \d{4}-\d\d-\d\d \d\d:\d\d UTC/);
    const response = sendOutcomeResponse(refused);
    expect(response.status).toBe(429);
    const retryAfter = Number(response.headers.get("retry-after"));
    expect(Math.abs(Date.now() + retryAfter * 1000 - expectedUntil)).toBeLessThan(5_000);

    const row = await readMailbox(box);
    expect(row.status).toBe("connected");
    expect(Math.abs((row.limitedUntil?.getTime() ?? 0) - expectedUntil)).toBeLessThan(1_000);
    const events = await auditOf(box, "mailbox.limit_reached");
    expect(events).toHaveLength(1);
    expect(events[0]?.metadata).toMatchObject({ code: "smtp_554_5.2.0" });

    // Until then nothing reaches the provider: the chokepoint refuses with 429.
    const askedBefore = asked.get(address);
    const acceptedBefore = accepted(address);
    const again = expectKind(await send(box), "rate_limited");
    expect(again.limit).toBe("providerQuota");
    expect(again.cause).toMatch(/^Nothing was sent\. Limit reached until/);
    expect(asked.get(address)).toBe(askedBefore);
    expect(accepted(address)).toBe(acceptedBefore);
    expect(sendOutcomeResult(again).message).toMatch(/Limit reached until .* UTC/);

    // The API says the same: 429, Retry-After, the sentence.
    const { token } = await makeApiKey(owner);
    const viaRoute = await POST(
      sendRequest({ mailbox: box, to: ["r@example.test"], text: "Hi" }, { token }),
    );
    expect(viaRoute.status).toBe(429);
    expect(Number(viaRoute.headers.get("retry-after"))).toBeGreaterThan(DAY_MS / 1000 - 600);
    const problem = (await viaRoute.json()) as { detail: string; limit: string };
    expect(problem).toMatchObject({ limit: "providerQuota" });
    expect(problem.detail).toMatch(/Limit reached until/);
    expect(await auditOf(box, "mailbox.limit_reached")).toHaveLength(1);

    // The grant works: a connection test still passes.
    expect((await testConnection({ ctx, mailboxId: box })).kind).toBe("connected");
  });

  it("Gmail 550 5.4.5 with nothing sent today: limited for 24 hours, connected, not needs_reconnect", async () => {
    const address = `quota-gmail-${Date.now()}@example.test`;
    const box = await connectMailbox(owner, address);
    answer(address, "quota_gmail");
    const before = Date.now();
    const refused = expectKind(await send(box), "provider_failed");
    expect(refused).toMatchObject({ failure: "quota", code: "smtp_550_5.4.5" });
    expect(refused.cause).toMatch(/Gmail/);
    const row = await readMailbox(box);
    expect(row.status).toBe("connected");
    const until = row.limitedUntil?.getTime() ?? 0;
    expect(until).toBeGreaterThanOrEqual(before + DAY_MS);
    expect(until).toBeLessThan(Date.now() + DAY_MS + 1_000);
    expect(await auditOf(box, "mailbox.limit_reached")).toHaveLength(1);
    expect(sendOutcomeResponse(expectKind(await send(box), "rate_limited")).status).toBe(429);
  });
});

describe("a quota reply that quotes an address", () => {
  it("keeps the reply in the log with [address]: the event's metadata is chained, out of erasure's reach", async () => {
    const address = `quota-quoted-${Date.now()}@example.test`;
    const box = await connectMailbox(owner, address);
    const failure = classifySmtpError({
      responseCode: 550,
      response: `550 5.4.5 Daily user sending limit exceeded for <${address}>.`,
    });
    expect(failure.kind).toBe("quota");
    await markMailboxLimited({ id: box }, failure);
    const [event] = await auditOf(box, "mailbox.limit_reached");
    expect(event?.metadata.smtpResponse).toBe(
      "550 5.4.5 Daily user sending limit exceeded for <[address]>.",
    );
    expect(JSON.stringify(event).toLowerCase()).not.toContain(address);
  });
});

describe("Microsoft 554 5.2.2 mailbox full", () => {
  it("needs an administrator, with the Sent Items retention instruction; later sends 409", async () => {
    const address = `full-${Date.now()}@example.test`;
    const box = await connectMailbox(owner, address);
    answer(address, "mailbox_full");
    const failed = expectKind(await send(box), "provider_failed");
    expect(failed).toMatchObject({ failure: "admin_action", code: "smtp_554_5.2.2" });
    expect(failed.smtpResponse).toMatch(/^554 5\.2\.2 mailbox full/);
    const row = await readMailbox(box);
    expect(row.status).toBe("admin_action_required");
    expect(row.lastErrorCause).toMatch(/retention policy/);
    expect(row.lastErrorCause).toMatch(/Sent Items/);
    expect(row.limitedUntil).toBeNull();
    expect(await auditOf(box, "mailbox.admin_action_required")).toHaveLength(1);
    const again = expectKind(await send(box), "conflict");
    expect(sendOutcomeResponse(again).status).toBe(409);
    expect(again.cause).toBe(row.lastErrorCause);
  });
});

describe("Gmail 421 4.7.0 and other 4xx replies: retried with backoff", () => {
  it("421 twice, then accepted: one message sent, mailbox untouched", async () => {
    const address = `later-${Date.now()}@example.test`;
    const box = await connectMailbox(owner, address);
    answer(address, "try_later_gmail", (n) => n <= 2);
    const started = Date.now();
    const sent = expectKind(await send(box), "sent");
    // Pauses of 250 ms and 1 s between the three attempts.
    expect(Date.now() - started).toBeGreaterThanOrEqual(1_200);
    // Three MAIL FROMs (421, 421, accepted) and the DATA of the third attempt.
    expect(asked.get(address)).toBe(4);
    expect(accepted(address)).toBe(1);
    expect(sent.id).toBeTruthy();
    const row = await readMailbox(box);
    expect(row).toMatchObject({ status: "connected", limitedUntil: null });
  });

  it("421 until the send's deadline: a transient failure with Retry-After, mailbox still connected", async () => {
    const address = `later-always-${Date.now()}@example.test`;
    const box = await connectMailbox(owner, address);
    answer(address, "try_later_gmail");
    const failed = expectKind(await send(box, Date.now() + 3_000), "provider_failed");
    expect(failed).toMatchObject({ failure: "transient", code: "smtp_421" });
    expect(failed.smtpResponse).toMatch(/^421 4\.7\.0 Try again later/);
    // Three attempts, each ended at MAIL FROM: 250 ms and 1 s fit in 3 s, the next 2 s would not.
    expect(asked.get(address)).toBe(3);
    const response = sendOutcomeResponse(failed);
    expect(response.status).toBe(502);
    expect(response.headers.get("retry-after")).toBe("60");
    expect(await readMailbox(box)).toMatchObject({ status: "connected", limitedUntil: null });
    expect(accepted(address)).toBe(0);
  });
});

describe("a connection that drops instead of answering", () => {
  it("before the message was handed over: sent again on a new connection, delivered once", async () => {
    const address = `drop-early-${Date.now()}@example.test`;
    const box = await connectMailbox(owner, address);
    let drops = 0;
    bed.behaviour = (mailbox) => (mailbox === address && drops++ === 0 ? "drop_before_mail" : null);
    expectKind(await send(box), "sent");
    expect(accepted(address)).toBe(1);
  });

  it("after the last byte of DATA: failed as interrupted and never resent, since the provider may have it", async () => {
    const address = `drop-late-${Date.now()}@example.test`;
    const box = await connectMailbox(owner, address);
    bed.behaviour = (mailbox) => (mailbox === address ? "drop_after_data" : null);
    const failed = expectKind(await send(box), "provider_failed");
    expect(failed).toMatchObject({ failure: "interrupted", code: "interrupted" });
    expect(failed.cause).toMatch(/not resent/i);
    // The server kept the one copy it was handed; nothing was sent a second time.
    expect(accepted(address)).toBe(1);
    const response = sendOutcomeResponse(failed);
    expect(response.status).toBe(502);
    // Nothing invites a blind retry.
    expect(response.headers.get("retry-after")).toBeNull();
    const db = await getDb();
    const [row] = await db
      .select()
      .from(messages)
      .where(eq(messages.id, failed.id ?? ""));
    expect(row).toMatchObject({ status: "failed", errorCode: "interrupted" });
    // Its Message-ID is kept, to look for in Sent Items: the one copy the server has.
    expect(bed.smtp.stats().acceptedMessageIds.get(row?.providerMessageId ?? "")).toBe(1);
    const events = await auditOf(failed.id ?? "", "message.failed");
    expect(events).toHaveLength(1);
    expect(await readMailbox(box)).toMatchObject({ status: "connected" });
  });
});
