import { randomUUID } from "node:crypto";
import { and, eq, inArray, sql } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { getDb } from "@/db";
import { insertOutboxRows } from "@/db/queries/notifications";
import {
  auditEvents,
  dataRequests,
  messages,
  notices,
  notificationOutbox,
  users,
  webhookDeliveries,
} from "@/db/schema";
import { pseudonymOf } from "@/lib/audit/redact";
import { sealPending } from "@/lib/audit/seal";
import { verifyAllAuditChains } from "@/lib/audit/verify-all";
import { writeAuditEvent } from "@/lib/audit/write";
import { createOwner, insertWebhookDeliveries, joinOrganization } from "@/lib/testing/factories";
import { subjectExport } from "./export";
import { eraseSubject, recordDataRequest } from "./requests";

// A person is named by their whole address: bob@… is not inside jimbob@…. Erasing or exporting
// bob must leave every row of jimbob (same domain, bob's address his suffix) as it was.

type Owner = Awaited<ReturnType<typeof createOwner>>;

const officerOf = (owner: Owner) => ({
  orgId: owner.orgId,
  actor: { type: "user" as const, id: owner.user.id, label: owner.user.email },
  role: "owner" as const,
  request: { ip: "198.51.100.23", userAgent: "privacy-test-agent" },
});

/** A member whose address is `address`, and one of each row that names them. */
async function memberNamedIn(owner: Owner, address: string, ip: string) {
  const db = await getDb();
  const [user] = await db.insert(users).values({ email: address, name: null }).returning();
  if (!user) throw new Error("user insert returned nothing");
  await joinOrganization({ orgId: owner.orgId, inviterId: owner.user.id, user, role: "sender" });
  const agent = `browser-of-${address}`;
  await writeAuditEvent(db, {
    orgId: owner.orgId,
    actor: { type: "user", id: user.id, label: address },
    action: "auth.sign_in",
    outcome: "success",
    request: { ip, userAgent: agent },
  });
  await writeAuditEvent(db, {
    orgId: owner.orgId,
    actor: { type: "user", id: owner.user.id, label: owner.user.email },
    action: "member.role_changed",
    target: { type: "user", id: user.id },
    outcome: "success",
    personal: { email: address },
  });
  await db.insert(notices).values({
    orgId: owner.orgId,
    kind: "mailbox",
    title: `Notice about ${address}`,
    body: `The mailbox ${address} needs attention.`,
  });
  await insertOutboxRows({
    db,
    orgId: owner.orgId,
    recipients: [owner.user.email ?? ""],
    event: { kind: "member_added", title: `Welcome: ${address}`, body: `${address} joined.` },
  });
  const [delivery] = await insertWebhookDeliveries(owner.orgId, [
    {
      body: JSON.stringify({ type: "message.sent", data: { mailbox: address } }),
      status: "pending",
    },
  ]);
  const [message] = await db
    .insert(messages)
    .values({
      orgId: owner.orgId,
      senderType: "user",
      senderId: owner.user.id,
      recipients: { to: ["customer@example.test"], cc: [], bcc: [] },
      recipientCount: 1,
      subject: `Quarterly report for ${address.toUpperCase()}`,
      status: "cancelled",
      lastError: `Cancelled by ${address} before it was sent.`,
    })
    .returning({ id: messages.id });
  return { user, address, ip, agent, delivery: delivery ?? "", message: message?.id ?? "" };
}

type Member = Awaited<ReturnType<typeof memberNamedIn>>;

async function eventsOf(owner: Owner, person: Member) {
  const db = await getDb();
  const rows = await db
    .select()
    .from(auditEvents)
    .where(eq(auditEvents.orgId, owner.orgId))
    .orderBy(auditEvents.id);
  return {
    signIn: rows.find((r) => r.action === "auth.sign_in" && r.actorId === person.user.id),
    roleChange: rows.find(
      (r) => r.action === "member.role_changed" && r.targetId === person.user.id,
    ),
  };
}

/** An earlier request's receipt, written by `by` as their address was stored (any case). */
async function receiptBy(owner: Owner, by: string) {
  const db = await getDb();
  const [row] = await db
    .insert(dataRequests)
    .values({
      orgId: owner.orgId,
      kind: "export",
      subjectEmail: `someone-${randomUUID().slice(0, 8)}@example.test`,
      receivedAt: new Date(),
      dueAt: new Date(Date.now() + 30 * 86_400_000),
      status: "completed",
      receipt: { kind: "export", by },
    })
    .returning({ id: dataRequests.id });
  return row?.id ?? "";
}

async function exportOf(owner: Owner, person: Member) {
  let text = "";
  for await (const chunk of subjectExport(await getDb(), {
    kind: "organization",
    orgId: owner.orgId,
    orgName: "A",
    email: person.address,
    userId: person.user.id,
  })) {
    text += chunk;
  }
  return text;
}

describe("an address is matched as a whole address", () => {
  it("erasing and exporting bob@… leaves every row of jimbob@… as it was", async () => {
    const db = await getDb();
    const owner = await createOwner();
    const tag = randomUUID().slice(0, 8);
    const bob = await memberNamedIn(owner, `bob-${tag}@example.test`, "192.0.2.10");
    const jim = await memberNamedIn(owner, `jimbob-${tag}@example.test`, "192.0.2.20");
    const bobsReceipt = await receiptBy(owner, `Bob-${tag}@Example.TEST`);
    const jimsReceipt = await receiptBy(owner, jim.address);
    await sealPending({ db, chain: owner.orgId });
    const jimBefore = await eventsOf(owner, jim);

    // Bob's export holds his rows and none of Jim's (not his events, IP or user agent).
    const exported = (await exportOf(owner, bob)).toLowerCase();
    expect(exported).toContain(`notice about ${bob.address}`);
    expect(exported).toContain(bob.ip);
    expect(exported).toContain(bob.delivery);
    expect(exported).not.toContain(jim.address);
    expect(exported).not.toContain(jim.ip);
    expect(exported).not.toContain(jim.agent);
    expect(exported).not.toContain(jim.delivery);

    const request = await recordDataRequest(officerOf(owner), {
      kind: "erasure",
      email: bob.address,
      receivedAt: new Date(),
    });
    const result = await eraseSubject(officerOf(owner), request.id);
    expect(result).toMatchObject({
      kind: "erased",
      receipt: { chainVerification: { intact: true } },
    });
    const pseudonym = pseudonymOf(bob.address);

    // Bob's events carry the pseudonym; Jim's are untouched, never marked erased.
    const bobAfter = await eventsOf(owner, bob);
    expect(bobAfter.signIn).toMatchObject({ actorLabel: pseudonym, ip: null, userAgent: null });
    expect(bobAfter.roleChange?.personal).toEqual({ email: pseudonym });
    const jimAfter = await eventsOf(owner, jim);
    expect(jimAfter.signIn).toMatchObject({
      actorLabel: jim.address,
      ip: jim.ip,
      userAgent: jim.agent,
      personalErasedAt: null,
    });
    expect(jimAfter).toEqual(jimBefore);

    // Bob's notice, notification email and pending delivery are gone; Jim's stay.
    const noticeTitles = await db
      .select({ title: notices.title })
      .from(notices)
      .where(and(eq(notices.orgId, owner.orgId), sql`${notices.title} like 'Notice about %'`));
    expect(noticeTitles.map((n) => n.title)).toEqual([`Notice about ${jim.address}`]);
    const emails = await db
      .select({ event: notificationOutbox.event })
      .from(notificationOutbox)
      .where(
        and(
          eq(notificationOutbox.orgId, owner.orgId),
          sql`${notificationOutbox.event}->>'title' like 'Welcome: %'`,
        ),
      );
    expect(emails.map((e) => (e.event as { title: string }).title)).toEqual([
      `Welcome: ${jim.address}`,
    ]);
    const deliveries = await db
      .select({ id: webhookDeliveries.id })
      .from(webhookDeliveries)
      .where(inArray(webhookDeliveries.id, [bob.delivery, jim.delivery]));
    expect(deliveries.map((d) => d.id)).toEqual([jim.delivery]);

    // Bob's address leaves his message's subject and failure cause; Jim's message is unchanged.
    const byId = new Map(
      (
        await db
          .select()
          .from(messages)
          .where(inArray(messages.id, [bob.message, jim.message]))
      ).map((m) => [m.id, m]),
    );
    expect(byId.get(bob.message)).toMatchObject({
      subject: `Quarterly report for ${pseudonym}`,
      lastError: `Cancelled by ${pseudonym} before it was sent.`,
    });
    expect(byId.get(jim.message)).toMatchObject({
      subject: `Quarterly report for ${jim.address.toUpperCase()}`,
      lastError: `Cancelled by ${jim.address} before it was sent.`,
    });

    // In other requests' receipts, Bob's address goes whatever its case; Jim's stays.
    const receipts = new Map(
      (
        await db
          .select({ id: dataRequests.id, receipt: dataRequests.receipt })
          .from(dataRequests)
          .where(inArray(dataRequests.id, [bobsReceipt, jimsReceipt]))
      ).map((r) => [r.id, r.receipt]),
    );
    expect(receipts.get(bobsReceipt)).toEqual({ kind: "export", by: pseudonym });
    expect(receipts.get(jimsReceipt)).toEqual({ kind: "export", by: jim.address });

    const out = {
      text: "",
      write(t: string) {
        this.text += t;
      },
    };
    expect(await verifyAllAuditChains({ db, chain: owner.orgId, out, err: out }), out.text).toBe(0);
    // Jim's notification email waits unsent in a shared database: gone, so that no later test's
    // notification flush (which serves every organisation) meets it.
    await db.delete(notificationOutbox).where(eq(notificationOutbox.orgId, owner.orgId));
  }, 60_000);
});
