import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { POST } from "@/app/api/v1/messages/route";
import { testConnection } from "@/lib/mail/send";
import {
  connectMailbox,
  makeApiKey,
  type SendTestbed,
  sendRequest,
  startSendTestbed,
  useRateLimits,
} from "@/lib/mail/testing";
import { closeAllMailboxTransports } from "@/lib/mail/transport";
import { resetMailProviders } from "@/lib/oauth/providers";
import { memberContext } from "@/lib/testing/context";
import { createOwner } from "@/lib/testing/factories";
import { sweepWebhookDeliveries } from "./dispatch";
import { createEndpoint } from "./endpoints";
import type { WebhookEventType } from "./event-types";
import { verifyWebhook } from "./signing";
import { orgDeliveriesOnce, startWebhookWorker } from "./testing/queue";
import { type Received, type Receiver, startReceiver } from "./testing/receiver";

// The events reach the endpoints from where they happen: a send through the real route and the
// real demo SMTP server (message.*), a mailbox the provider refuses and then accepts again
// (mailbox.*). A real local HTTP server receives them and checks every signature.

let bed: SendTestbed;
let receiver: Receiver;
let restoreLimits: () => Promise<void>;

beforeAll(async () => {
  bed = await startSendTestbed();
  receiver = await startReceiver();
  restoreLimits = useRateLimits({ oauthStart: { tokens: 1_000, window: "1 m" } });
  await startWebhookWorker();
});

afterAll(async () => {
  closeAllMailboxTransports();
  resetMailProviders();
  await restoreLimits?.();
  await receiver?.close();
  await bed?.close();
});

afterEach(() => {
  receiver.received.length = 0;
});

async function orgWith(events: WebhookEventType[]) {
  const owner = await createOwner("events");
  const ctx = memberContext(owner.orgId, owner.user, "owner");
  // A path of its own, so that what another test's endpoint receives is told apart.
  const path = `/hooks/${owner.orgId}`;
  const url = new URL(path, receiver.url).toString();
  const { secret } = await createEndpoint(ctx, { url, description: "", events });
  const received = () => receiver.received.filter((r) => r.path === path);
  return { owner, ctx, secret, path, received };
}

/** Every delivery of the organisation once attempted (the sweep enqueues the sends' events). */
async function settled(orgId: string) {
  await new Promise((resolve) => setTimeout(resolve, 300));
  await sweepWebhookDeliveries();
  return orgDeliveriesOnce(orgId);
}

function verified(secret: string, r: Received) {
  const h = (name: string) => (r.headers[name] as string | undefined) ?? null;
  return verifyWebhook(
    secret,
    { id: h("webhook-id"), timestamp: h("webhook-timestamp"), signature: h("webhook-signature") },
    r.body,
  );
}

describe("message events", () => {
  it("an API send emits message.sent, signed, to the endpoints that chose it", {
    timeout: 90_000,
  }, async () => {
    const { owner, secret, path, received } = await orgWith(["message.sent"]);
    // Another endpoint of the organisation, for mailbox events only, hears nothing of it.
    await createEndpoint(memberContext(owner.orgId, owner.user, "owner"), {
      url: `${receiver.url}/mailboxes`,
      description: "",
      events: ["mailbox.needs_reconnect"],
    });
    const mailbox = await connectMailbox(owner);
    const { token } = await makeApiKey(owner);
    const response = await POST(
      sendRequest(
        { mailbox, to: ["rcpt@example.test"], subject: "Webhook me", text: "Hello" },
        { token },
      ),
    );
    expect(response.status).toBe(201);
    const sent = (await response.json()) as { id: string; messageId: string };
    const rows = await settled(owner.orgId);
    expect(rows.map((r) => [r.eventType, r.status])).toEqual([["message.sent", "delivered"]]);
    expect(received()).toHaveLength(1);
    const [got] = received() as [Received];
    expect(got.path).toBe(path);
    expect(verified(secret, got)).toBe(true);
    const body = JSON.parse(got.body);
    expect(body).toMatchObject({
      type: "message.sent",
      data: { id: sent.id, status: "sent", mailboxId: mailbox, providerMessageId: sent.messageId },
    });
    // Thin: no recipient and no subject leave with it.
    expect(got.body).not.toContain("rcpt@example.test");
    expect(got.body).not.toContain("Webhook me");
  });

  it("the send itself sets the delivery going: it arrives with no sweep but the one the send asks for", {
    timeout: 60_000,
  }, async () => {
    const { owner, received } = await orgWith(["message.sent"]);
    const mailbox = await connectMailbox(owner);
    const { token } = await makeApiKey(owner);
    const response = await POST(
      sendRequest({ mailbox, to: ["rcpt@example.test"], subject: "Kick", text: "Hi" }, { token }),
    );
    expect(response.status).toBe(201);
    // The periodic sweep is off in these tests (startWebhookWorker): only the send's kick,
    // made because its statement wrote a delivery, can have enqueued it.
    for (let i = 0; i < 100 && received().length === 0; i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(received()).toHaveLength(1);
  });

  it("an API send the provider refuses emits message.failed with the failure's code", async () => {
    const { owner, secret, received } = await orgWith(["message.failed", "message.sent"]);
    const mailbox = await connectMailbox(owner);
    const { token } = await makeApiKey(owner);
    bed.authOverride = () => ({
      code: 535,
      message: "5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled",
    });
    let response: Response;
    try {
      response = await POST(
        sendRequest({ mailbox, to: ["rcpt@example.test"], subject: "No", text: "x" }, { token }),
      );
    } finally {
      bed.authOverride = null;
    }
    expect(response.status).toBe(502);
    const { id } = (await response.json()) as { id: string };
    const rows = await settled(owner.orgId);
    expect(rows.map((r) => [r.eventType, r.status])).toEqual([["message.failed", "delivered"]]);
    const [got] = received() as [Received];
    expect(verified(secret, got)).toBe(true);
    expect(JSON.parse(got.body)).toMatchObject({
      type: "message.failed",
      data: { id, status: "failed", mailboxId: mailbox, error: expect.any(String) },
    });
  });

  it("a dashboard test send emits nothing (API messages only)", async () => {
    const { owner } = await orgWith(["message.sent", "message.failed"]);
    const mailbox = await connectMailbox(owner);
    const { sendMessage } = await import("@/lib/mail/send");
    const outcome = await sendMessage({
      ctx: memberContext(owner.orgId, owner.user, "owner"),
      body: {
        type: "value",
        value: { mailbox, to: ["rcpt@example.test"], subject: "x", text: "y" },
      },
      purpose: "dashboard_test",
    });
    expect(outcome.kind).toBe("sent");
    expect(await settled(owner.orgId)).toEqual([]);
  });
});

describe("mailbox events", () => {
  it("a mailbox the provider refuses, then accepts again: admin_action_required, recovered", async () => {
    const { owner, ctx, secret, received } = await orgWith([
      "mailbox.admin_action_required",
      "mailbox.recovered",
      "mailbox.needs_reconnect",
    ]);
    const box = await connectMailbox(owner);
    bed.authOverride = () => ({
      code: 535,
      message: "5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled",
    });
    try {
      expect((await testConnection({ ctx, mailboxId: box })).kind).toBe("provider_failed");
    } finally {
      bed.authOverride = null;
    }
    expect((await testConnection({ ctx, mailboxId: box, isAdminRetry: true })).kind).toBe(
      "connected",
    );
    const rows = await settled(owner.orgId);
    expect(rows.every((r) => r.status === "delivered")).toBe(true);
    const bodies = received().map((r) => {
      expect(verified(secret, r)).toBe(true);
      return JSON.parse(r.body) as { type: string; data: Record<string, unknown> };
    });
    expect(bodies.map((b) => b.type).sort()).toEqual([
      "mailbox.admin_action_required",
      "mailbox.recovered",
    ]);
    expect(bodies.find((b) => b.type === "mailbox.recovered")?.data).toMatchObject({
      mailboxId: box,
      status: "connected",
    });
    expect(bodies.find((b) => b.type === "mailbox.admin_action_required")?.data).toMatchObject({
      mailboxId: box,
      status: "admin_action_required",
    });
  });
});
