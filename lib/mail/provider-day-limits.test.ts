import { randomUUID } from "node:crypto";
import { eq } from "drizzle-orm";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { POST } from "@/app/api/v1/messages/route";
import { getDb } from "@/db";
import { messages, type ProviderId } from "@/db/schema";
import type { MemberContext } from "@/lib/auth/context";
import { registerMailProvider, resetMailProviders } from "@/lib/oauth/providers";
import { type Person, setMailbox } from "@/lib/oauth/testing/fixtures";
import { rateLimits } from "@/lib/ratelimit/runtime";
import { auditEventsOf } from "@/lib/testing/audit";
import { memberContext } from "@/lib/testing/context";
import { createOwner } from "@/lib/testing/factories";
import type { SendOutcome } from "./outcomes";
import { drainMailbox } from "./queued";
import { sendMessage } from "./send";
import {
  connectMailbox,
  makeApiKey,
  type SendTestbed,
  sendRequest,
  startSendTestbed,
  useRateLimits,
} from "./testing";
import { closeAllMailboxTransports } from "./transport";

// Each provider's day limit in its own unit (PROVIDERS.md): Gmail allows about 2,000 messages a
// day, whatever their recipients; Microsoft 10,000 recipients a day. Google and Microsoft cannot
// be reached from here, so their ids are registered over the real demo provider and SMTP server:
// what differs between providers in these tests is only the mailbox's provider id, which is
// what the chokepoint's limits are chosen by.

const GOOGLE_MESSAGES_A_DAY = 3;
const MICROSOFT_RECIPIENTS_A_DAY = 50;
const RECIPIENTS = Array.from({ length: 20 }, (_, i) => `rcpt${i}@example.test`);

let bed: SendTestbed;
let restoreLimits: () => Promise<void>;
let owner: Person;
let ctx: MemberContext;

beforeAll(async () => {
  bed = await startSendTestbed();
  for (const id of ["google", "microsoft"] as const) {
    registerMailProvider({ ...bed.oauth.provider, id, smtp: bed.endpoint });
  }
  restoreLimits = useRateLimits(
    {
      oauthStart: { tokens: 1_000, window: "1 m" },
      testSend: { tokens: 1_000, window: "1 m" },
      apiKey: { tokens: 1_000, window: "1 m" },
      sendMailboxDayGoogle: { tokens: GOOGLE_MESSAGES_A_DAY, window: "1 d" },
      sendMailboxDayMicrosoft: { tokens: MICROSOFT_RECIPIENTS_A_DAY, window: "1 d" },
    },
    { audited: true },
  );
  owner = await createOwner();
  ctx = memberContext(owner.orgId, { id: owner.user.id, email: "owner" }, "owner");
});

afterEach(async () => {
  await closeAllMailboxTransports();
});

afterAll(async () => {
  await closeAllMailboxTransports();
  resetMailProviders();
  await restoreLimits?.();
  await bed?.close();
});

/** A mailbox connected through the real consent flow, then stored as `provider`'s. */
async function mailboxOf(provider: ProviderId): Promise<string> {
  const mailboxId = await connectMailbox(owner);
  await setMailbox(mailboxId, { provider });
  return mailboxId;
}

function message(mailbox: string, to = RECIPIENTS) {
  return { mailbox, to, subject: `Day limit ${randomUUID()}`, text: "Hi" };
}

function send(mailbox: string, to = RECIPIENTS): Promise<SendOutcome> {
  return sendMessage({
    ctx,
    purpose: "dashboard_test",
    body: { type: "value", value: message(mailbox, to) },
  });
}

async function sendUntilRefused(mailbox: string, most: number) {
  const outcomes: SendOutcome[] = [];
  for (let i = 0; i < most; i++) {
    const outcome = await send(mailbox);
    outcomes.push(outcome);
    if (outcome.kind !== "sent") break;
  }
  return outcomes;
}

/** How many of these sends the SMTP server accepted. */
function acceptedBySmtp(outcomes: SendOutcome[]): number {
  const accepted = bed.smtp.stats().acceptedMessageIds;
  return outcomes.filter(
    (outcome) => outcome.kind === "sent" && accepted.get(outcome.messageId ?? "") === 1,
  ).length;
}

describe("a mailbox's day limit, in its provider's unit", () => {
  it("Google: a day limit of 3 messages sends 3 messages of 20 recipients each, then refuses the 4th", async () => {
    const mailbox = await mailboxOf("google");
    const outcomes = await sendUntilRefused(mailbox, 5);
    expect(outcomes.map((outcome) => outcome.kind)).toEqual([
      "sent",
      "sent",
      "sent",
      "rate_limited",
    ]);
    expect(outcomes.at(-1)).toMatchObject({ kind: "rate_limited", limit: "sendMailboxDayGoogle" });
    expect(acceptedBySmtp(outcomes)).toBe(3);
  });

  it("Microsoft: a day limit of 50 recipients sends 2 messages of 20 recipients, then refuses the 3rd", async () => {
    const mailbox = await mailboxOf("microsoft");
    const outcomes = await sendUntilRefused(mailbox, 5);
    expect(outcomes.map((outcome) => outcome.kind)).toEqual(["sent", "sent", "rate_limited"]);
    expect(outcomes.at(-1)).toMatchObject({
      kind: "rate_limited",
      limit: "sendMailboxDayMicrosoft",
    });
    expect(acceptedBySmtp(outcomes)).toBe(2);
  });

  it("Microsoft: a message with more recipients than are left today counts none of them; one that fits still goes", async () => {
    const mailbox = await mailboxOf("microsoft");
    const outcomes = await sendUntilRefused(mailbox, 5);
    expect(outcomes.map((outcome) => outcome.kind)).toEqual(["sent", "sent", "rate_limited"]);
    // 50 a day, 40 sent: the refused 20 took nothing, so 10 recipients still go today.
    const fits = await send(mailbox, RECIPIENTS.slice(0, 10));
    expect(fits.kind).toBe("sent");
    expect(acceptedBySmtp([...outcomes, fits])).toBe(3);
    expect(await send(mailbox, RECIPIENTS.slice(0, 1))).toMatchObject({
      kind: "rate_limited",
      limit: "sendMailboxDayMicrosoft",
    });
    // The refusals are audited in the mailbox's organisation (written after the answer).
    const refused = async () =>
      (await auditEventsOf(owner.orgId, { action: "rate_limit.refused" })).filter(
        (event) => (event.metadata as { scope?: string }).scope === `mailbox:${mailbox}`,
      );
    await expect.poll(async () => (await refused()).length).toBeGreaterThanOrEqual(1);
    expect((await refused())[0]?.metadata).toMatchObject({ limit: "sendMailboxDayMicrosoft" });
  });

  it("Google, queued: 3 of 4 messages of 20 recipients are sent; the 4th waits for the limit", async () => {
    const mailbox = await mailboxOf("google");
    const { token } = await makeApiKey(owner);
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) {
      const response = await POST(
        sendRequest(message(mailbox), { token, headers: { prefer: "respond-async" } }),
      );
      expect(response.status).toBe(202);
      ids.push(((await response.json()) as { id: string }).id);
    }
    await drainMailbox(mailbox);

    const db = await getDb();
    const rows = await db.select().from(messages).where(eq(messages.mailboxId, mailbox));
    const statusOf = (id: string) => rows.find((row) => row.id === id)?.status;
    expect(ids.map(statusOf)).toEqual(["sent", "sent", "sent", "queued"]);
    const held = rows.find((row) => row.id === ids[3]);
    expect(held?.lastError).toContain("sendMailboxDayGoogle");
    expect(held?.nextAttemptAt?.getTime()).toBeGreaterThan(Date.now());
  });
});

describe("a send that one of its mailbox's limits refuses takes nothing from the other", () => {
  let restore: () => Promise<void>;
  beforeAll(() => {
    // The "minute" limits over an hour: on Redis a window that rolls mid-test would blur them.
    restore = useRateLimits({
      oauthStart: { tokens: 1_000, window: "1 m" },
      testSend: { tokens: 1_000, window: "1 m" },
      sendMailboxMinuteGoogle: { tokens: 1, window: "1 h" },
      sendMailboxDayGoogle: { tokens: 3, window: "1 d" },
      sendMailboxMinuteMicrosoft: { tokens: 2, window: "1 h" },
      sendMailboxDayMicrosoft: { tokens: RECIPIENTS.length, window: "1 d" },
    });
  });
  afterAll(() => restore?.());

  it("refused by the minute limit: the day limit still has every message not sent", async () => {
    const mailbox = await mailboxOf("google");
    const outcomes = await sendUntilRefused(mailbox, 2);
    outcomes.push(await send(mailbox), await send(mailbox));
    expect(outcomes.map((outcome) => outcome.kind)).toEqual([
      "sent",
      "rate_limited",
      "rate_limited",
      "rate_limited",
    ]);
    expect(outcomes.at(-1)).toMatchObject({ limit: "sendMailboxMinuteGoogle" });
    expect(acceptedBySmtp(outcomes)).toBe(1);
    // 3 a day, 1 sent: two more today.
    const day = rateLimits().get("sendMailboxDayGoogle");
    const left = [];
    for (let i = 0; i < 3; i++) left.push((await day.limit(`mailbox:${mailbox}`)).success);
    expect(left).toEqual([true, true, false]);
  });

  it("refused by the day limit: the minute limit gets its message back", async () => {
    const mailbox = await mailboxOf("microsoft");
    const outcomes = await sendUntilRefused(mailbox, 3);
    expect(outcomes.map((outcome) => outcome.kind)).toEqual(["sent", "rate_limited"]);
    expect(outcomes.at(-1)).toMatchObject({ limit: "sendMailboxDayMicrosoft" });
    // 2 a minute, 1 sent: one more this minute.
    const minute = rateLimits().get("sendMailboxMinuteMicrosoft");
    const left = [];
    for (let i = 0; i < 2; i++) left.push((await minute.limit(`mailbox:${mailbox}`)).success);
    expect(left).toEqual([true, false]);
  });
});
