import { randomUUID } from "node:crypto";
import { eq, inArray, sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { getDb } from "@/db";
import { listRecentMessages } from "@/db/queries/messages";
import { insertOutboxRows } from "@/db/queries/notifications";
import { listDataRequests } from "@/db/queries/privacy";
import {
  auditEvents,
  dataRequests,
  invitations,
  jobItems,
  jobs,
  memberships,
  messages,
  notices,
  users,
  webhookDeliveries,
} from "@/db/schema";
import { loadActivityPage } from "@/lib/audit/activity";
import { pseudonymOf } from "@/lib/audit/redact";
import { sealPending } from "@/lib/audit/seal";
import { verifyAllAuditChains } from "@/lib/audit/verify-all";
import { writeAuditEvent } from "@/lib/audit/write";
import { inviteMember } from "@/lib/auth/members";
import { encryptField } from "@/lib/crypto";
import { keyring } from "@/lib/crypto/runtime";
import { sendMessage } from "@/lib/mail/send";
import { BODY_FIELD } from "@/lib/mail/send-queued";
import {
  connectMailbox,
  makeApiKey,
  type SendTestbed,
  startSendTestbed,
  useRateLimits,
} from "@/lib/mail/testing";
import { openMailboxToken } from "@/lib/oauth/sealed";
import { connectDemoMailbox, readMailbox } from "@/lib/oauth/testing/fixtures";
import { auditEventsOf } from "@/lib/testing/audit";
import { memberContext } from "@/lib/testing/context";
import {
  createMember,
  createOwner,
  createUser,
  insertWebhookDeliveries,
  joinOrganization,
} from "@/lib/testing/factories";
import { subjectExport } from "./export";
import {
  describeSubject,
  dueDateFor,
  eraseSubject,
  isOverdue,
  recordDataRequest,
} from "./requests";

let bed: SendTestbed;
let restoreLimits: (() => Promise<void>) | undefined;

beforeAll(async () => {
  bed = await startSendTestbed();
  restoreLimits = useRateLimits({
    oauthStart: { tokens: 1_000, window: "1 m" },
    testSend: { tokens: 1_000, window: "1 m" },
  });
});

afterAll(async () => {
  await restoreLimits?.();
  await bed?.close();
});

const REQUEST = { ip: "198.51.100.23", userAgent: "privacy-test-agent" };

function officerOf(
  owner: { user: { id: string; email: string | null }; orgId: string },
  role: "owner" | "compliance" = "owner",
) {
  return {
    orgId: owner.orgId,
    actor: { type: "user" as const, id: owner.user.id, label: owner.user.email },
    role,
    request: REQUEST,
  };
}

async function sendAs(
  person: { user: { id: string; email: string | null }; orgId: string },
  mailbox: string,
  to: string[],
  subject: string,
) {
  const outcome = await sendMessage({
    ctx: memberContext(person.orgId, person.user, "admin", REQUEST),
    body: { type: "value", value: { mailbox, to, subject, text: "Hello" } },
    purpose: "dashboard_test",
  });
  if (outcome.kind !== "sent") throw new Error(`send failed: ${outcome.kind}`);
  return outcome.id;
}

/** An erasure request for `email`, recorded and carried out at once by the owner. */
async function eraseNow(owner: Parameters<typeof officerOf>[0], email: string) {
  const request = await recordDataRequest(officerOf(owner), {
    kind: "erasure",
    email,
    receivedAt: new Date(),
  });
  return eraseSubject(officerOf(owner), request.id);
}

/** Every text, varchar and jsonb column of every table: the rows where `needle` appears. */
async function scanDatabase(needle: string) {
  const db = await getDb();
  const columns = (
    (await db.execute(sql`
      select table_name, column_name from information_schema.columns
      where table_schema = 'public'
        and data_type in ('text', 'character varying', 'jsonb', 'ARRAY', 'USER-DEFINED')`)) as unknown as {
      rows: { table_name: string; column_name: string }[];
    }
  ).rows;
  const found: string[] = [];
  for (const c of columns) {
    const result = (await db.execute(
      sql.raw(
        `select count(*)::int as n from "${c.table_name}" where strpos(lower("${c.column_name}"::text), '${needle.toLowerCase().replace(/'/g, "''")}') > 0`,
      ),
    )) as unknown as { rows: { n: number }[] };
    if ((result.rows[0]?.n ?? 0) > 0) found.push(`${c.table_name}.${c.column_name}`);
  }
  return found;
}

function collect() {
  let text = "";
  return {
    write: (chunk: string) => {
      text += chunk;
    },
    text: () => text,
  };
}

async function exportText(scope: Parameters<typeof subjectExport>[1]) {
  let text = "";
  for await (const chunk of subjectExport(await getDb(), scope)) text += chunk;
  return JSON.parse(text) as Record<string, unknown> & {
    organizations: Record<string, unknown[]>[];
  };
}

describe("erasure", () => {
  it("erases a member: tokens revoked at the provider, rows deleted, addresses removed, the chain still verifies, the receipt says so", async () => {
    const db = await getDb();
    const owner = await createOwner();
    const name = `Quillon${randomUUID().slice(0, 6)}`;
    const user = await createUser(name.toLowerCase());
    await db.update(users).set({ name }).where(eq(users.id, user.id));
    await joinOrganization({ orgId: owner.orgId, inviterId: owner.user.id, user, role: "admin" });
    const person = { user, orgId: owner.orgId };
    const email = user.email ?? "";

    // Their mailbox (their own address), an API key, mail they sent and mail sent to them.
    const theirBox = await connectMailbox(person, email);
    const stored = await readMailbox(theirBox);
    const accessToken = openMailboxToken(theirBox, "access_token", stored.accessTokenEnc ?? "");
    const refreshToken = openMailboxToken(theirBox, "refresh_token", stored.refreshTokenEnc ?? "");
    expect(await bed.oauth.introspect(accessToken)).toMatchObject({ active: true });
    await makeApiKey(person);
    await sendAs(person, theirBox, ["colleague@example.test"], "Quarterly numbers");
    const ownerBox = await connectMailbox(owner);
    const kept = await sendAs(
      owner,
      ownerBox,
      [`"${name}" <${email}>`, "someone-else@example.test"],
      `For ${name}`,
    );
    await writeAuditEvent(db, {
      orgId: owner.orgId,
      actor: { type: "user", id: user.id, label: email },
      action: "auth.sign_in",
      outcome: "success",
      request: { ip: "192.0.2.44", userAgent: "their-browser" },
    });
    await sealPending({ db, chain: owner.orgId });

    const request = await recordDataRequest(officerOf(owner), {
      kind: "erasure",
      email: email.toUpperCase(),
      receivedAt: new Date(),
    });
    const summary = await describeSubject(db, owner.orgId, email);
    expect(summary).toMatchObject({
      role: "admin",
      mailboxes: 1,
      apiKeys: 1,
      messagesSent: 1,
      messagesAddressed: 1,
      account: { accountDeleted: true },
    });

    // A notification email waiting for them, and one naming them to someone else.
    await insertOutboxRows({
      db,
      orgId: owner.orgId,
      recipients: [email, owner.user.email ?? ""],
      event: { kind: "member_added", title: `New member: ${email}`, body: `${email} joined.` },
    });

    const result = await eraseSubject(officerOf(owner), request.id);
    if (result.kind !== "erased") throw new Error(`not erased: ${result.kind}`);

    // Nothing left anywhere that names them.
    expect(await scanDatabase(email)).toEqual([]);
    expect(await scanDatabase(name)).toEqual([]);
    // The provider says their grant is gone.
    expect(await bed.oauth.introspect(accessToken)).toMatchObject({ active: false });
    expect(await bed.oauth.introspect(refreshToken)).toMatchObject({ active: false });
    // The chains the erasure rewrote verify from genesis, as npm run audit:verify does. (Other
    // test files tamper with chains of their own in this shared database on purpose.)
    for (const chain of [owner.orgId, ""]) {
      const out = collect();
      expect(await verifyAllAuditChains({ db, chain, out, err: collect() }), out.text()).toBe(0);
    }
    // The kept message lost only their entry.
    const [message] = (
      (await db.execute(sql`select recipients from messages where id = ${kept}`)) as unknown as {
        rows: { recipients: { to: string[] } }[];
      }
    ).rows;
    expect(message?.recipients.to).toEqual(["someone-else@example.test"]);
    // Their events now carry the pseudonym, with no address, IP or user agent.
    const [signIn] = await db
      .select()
      .from(auditEvents)
      .where(eq(auditEvents.actorId, user.id))
      .orderBy(sql`${auditEvents.id} desc`)
      .limit(1);
    expect(signIn).toMatchObject({ ip: null, userAgent: null });
    expect(signIn?.actorLabel).toMatch(/^erased:[0-9a-f]{12}$/);
    expect(signIn?.personalErasedAt).not.toBeNull();

    // The receipt, kept with the request.
    const [row] = await db.select().from(dataRequests).where(eq(dataRequests.id, request.id));
    expect(row).toMatchObject({ status: "completed", subjectEmail: signIn?.actorLabel });
    expect(row?.receipt).toMatchObject({
      kind: "erasure",
      subject: signIn?.actorLabel,
      by: owner.user.email,
      mailboxesRevokedAtProvider: [{ result: "revoked" }],
      deleted: { mailboxes: 1, apiKeys: 1, memberships: 1, userAccount: true, sessions: 0 },
      messages: { recipientRemovedFrom: 1 },
      chainVerification: { intact: true },
    });
    expect(
      (row?.receipt as { auditEventsPseudonymised?: number } | undefined)?.auditEventsPseudonymised,
    ).toBeGreaterThan(3);
    const erased = await db
      .select({ n: sql<number>`count(*)::int` })
      .from(auditEvents)
      .where(eq(auditEvents.action, "privacy.erased"));
    expect(erased[0]?.n).toBeGreaterThan(0);
  }, 120_000);

  it("an edit of an erased event's personal fields is still caught", async () => {
    const db = await getDb();
    const owner = await createOwner();
    const user = await createUser("erased-edit");
    await joinOrganization({ orgId: owner.orgId, inviterId: owner.user.id, user, role: "sender" });
    const request = await recordDataRequest(officerOf(owner), {
      kind: "erasure",
      email: user.email ?? "",
      receivedAt: new Date(),
    });
    expect((await eraseSubject(officerOf(owner), request.id)).kind).toBe("erased");
    await db.execute(
      sql`update audit_events set actor_label = 'someone@example.test' where chain = ${owner.orgId} and personal_erased_at is not null and actor_id = ${user.id}`,
    );
    const out = collect();
    expect(await verifyAllAuditChains({ db, chain: owner.orgId, out, err: collect() })).toBe(1);
    expect(out.text()).toMatch(/erased personal fields do not match/);
  }, 60_000);

  it("erases someone who was only a recipient: their address leaves message rows and audit events", async () => {
    const db = await getDb();
    const owner = await createOwner();
    const box = await connectMailbox(owner);
    const outsider = `outsider-${randomUUID().slice(0, 8)}@example.test`;
    await sendAs(owner, box, [outsider], "Hello there");
    await writeAuditEvent(db, {
      orgId: owner.orgId,
      actor: { type: "user", id: owner.user.id, label: owner.user.email },
      action: "member.invited",
      outcome: "success",
      metadata: { email: outsider, role: "sender" },
    });
    const exportBefore = await exportText({
      kind: "organization",
      orgId: owner.orgId,
      orgName: "A",
      email: outsider,
      userId: null,
    });
    expect(exportBefore.organizations[0]?.messagesAddressed).toHaveLength(1);
    expect(exportBefore.organizations[0]?.auditEvents).toHaveLength(1);

    const result = await eraseNow(owner, outsider);
    expect(result).toMatchObject({
      kind: "erased",
      receipt: { messages: { recipientRemovedFrom: 1 }, chainVerification: { intact: true } },
    });
    expect(await scanDatabase(outsider)).toEqual([]);
  }, 60_000);

  it("demo mode: erasure deletes the demo inbox's messages to and from the address, and only those", async () => {
    const owner = await createOwner();
    const erased = `inbox-${randomUUID().slice(0, 8)}@example.test`;
    const other = `kept-${randomUUID().slice(0, 8)}@example.test`;
    const box = await connectMailbox(owner);
    const theirs = await connectMailbox(owner, erased);
    await sendAs(owner, box, [erased], "To the person");
    await sendAs(owner, theirs, [other], "From the person");
    await sendAs(owner, box, [other], "Nothing to do with them");
    const names = (m: { envelopeFrom: string; envelopeTo: string[] }) =>
      m.envelopeFrom === erased || m.envelopeTo.includes(erased);
    expect((await bed.readInbox()).filter(names)).toHaveLength(2);

    const result = await eraseNow(owner, erased);
    const inbox = await bed.readInbox();
    expect(JSON.stringify(inbox).toLowerCase()).not.toContain(erased);
    expect(inbox.filter((m) => m.envelopeTo.includes(other)).map((m) => m.subject)).toEqual([
      "Nothing to do with them",
    ]);
    // The receipt counts them.
    expect(result).toMatchObject({
      kind: "erased",
      receipt: { demoInbox: { messagesDeleted: 2 } },
    });
  }, 60_000);

  it("erases the address of a refused invitation: shown on the activity page and in the export until then, in no column of its event after, the chain intact", async () => {
    const db = await getDb();
    const owner = await createOwner();
    const admin = await createMember(owner.orgId, "admin");
    const invitee = `refused-${randomUUID().slice(0, 8)}@example.test`;
    // An admin may not invite an owner: refused, and audited as denied.
    await expect(
      inviteMember(db, memberContext(owner.orgId, admin, "admin"), {
        email: invitee,
        role: "owner",
      }),
    ).rejects.toThrow(/Only an owner/);
    const [refused] = await auditEventsOf(owner.orgId, { action: "member.invited" });
    expect(refused).toMatchObject({ outcome: "denied", targetType: "invitation" });
    const eventId = refused?.id ?? 0;
    const activityTarget = async () => {
      const page = await loadActivityPage({
        db,
        chain: owner.orgId,
        query: {
          filter: { action: "member.invited" },
          direction: "older",
          view: "organization",
          params: {},
        },
      });
      return page.entries.find((e) => e.id === eventId)?.target;
    };
    expect(await activityTarget()).toBe(`Invitation ${invitee}`);
    const exported = await exportText({
      kind: "organization",
      orgId: owner.orgId,
      orgName: "A",
      email: invitee,
      userId: null,
    });
    expect(exported.organizations[0]?.auditEvents).toEqual([
      expect.objectContaining({
        id: eventId,
        personal: expect.objectContaining({ email: invitee }),
      }),
    ]);

    const result = await eraseNow(owner, invitee);
    expect(result).toMatchObject({
      kind: "erased",
      receipt: { chainVerification: { intact: true } },
    });
    // Every stored column of the event, as text: the address is in none.
    const [row] = (
      (await db.execute(
        sql`select to_jsonb(e)::text as row from audit_events e where id = ${eventId}`,
      )) as unknown as { rows: { row: string }[] }
    ).rows;
    expect(row?.row).toBeDefined();
    expect(row?.row.toLowerCase()).not.toContain(invitee);
    expect(await scanDatabase(invitee)).toEqual([]);
    expect(await activityTarget()).toBe(`Invitation ${pseudonymOf(invitee)}`);
    const out = collect();
    expect(
      await verifyAllAuditChains({ db, chain: owner.orgId, out, err: collect() }),
      out.text(),
    ).toBe(0);
  }, 60_000);

  it("erases someone a queued message and a webhook delivery still carry: the message is cancelled, the delivery deleted", async () => {
    const db = await getDb();
    const owner = await createOwner();
    const outsider = `queued-${randomUUID().slice(0, 8)}@example.test`;
    // A queued message as the queue leaves it (sealed body, next attempt in an hour).
    const [queued] = await db
      .insert(messages)
      .values({
        orgId: owner.orgId,
        senderType: "user",
        senderId: owner.user.id,
        recipients: { to: [outsider], cc: [], bcc: [] },
        recipientCount: 1,
        subject: "Waiting",
        status: "queued",
        bodySealed: "v1.sealed-body",
        nextAttemptAt: new Date(Date.now() + 3_600_000),
        deadlineAt: new Date(Date.now() + 86_400_000),
      })
      .returning({ id: messages.id });
    const [, other] = await insertWebhookDeliveries(owner.orgId, [
      {
        body: JSON.stringify({ type: "message.sent", data: { mailbox: outsider } }),
        status: "pending",
      },
      {
        body: JSON.stringify({ type: "message.sent", data: { mailbox: "x@example.test" } }),
        status: "delivered",
      },
    ]);
    const summary = await describeSubject(db, owner.orgId, outsider);
    expect(summary).toMatchObject({ queuedMessages: 1, webhookDeliveries: 1 });

    const result = await eraseNow(owner, outsider);
    expect(result).toMatchObject({
      kind: "erased",
      receipt: {
        deleted: { webhookDeliveries: 1 },
        messages: { queuedCancelled: 1, recipientRemovedFrom: 1 },
        chainVerification: { intact: true },
      },
    });
    const [row] = await db
      .select()
      .from(messages)
      .where(eq(messages.id, queued?.id as string));
    expect(row).toMatchObject({ status: "cancelled", bodySealed: null, nextAttemptAt: null });
    const left = await db
      .select({ id: webhookDeliveries.id })
      .from(webhookDeliveries)
      .where(eq(webhookDeliveries.orgId, owner.orgId));
    expect(left.map((r) => r.id)).toEqual([other]);
    expect(await scanDatabase(outsider)).toEqual([]);
  }, 60_000);

  it("cancels a queued message whose sealed body names the person (Reply-To, text), whoever sends it", async () => {
    const db = await getDb();
    const owner = await createOwner();
    const ownerBox = await connectMailbox(owner);
    const alice = `alice-${randomUUID().slice(0, 8)}@example.test`;
    const sealedRow = async (request: Record<string, unknown>) => {
      const id = randomUUID();
      await db.insert(messages).values({
        id,
        orgId: owner.orgId,
        mailboxId: ownerBox,
        senderType: "user",
        senderId: owner.user.id,
        recipients: { to: ["carol@example.test"], cc: [], bcc: [] },
        recipientCount: 1,
        subject: String(request.subject),
        status: "queued",
        bodySealed: encryptField(keyring(), JSON.stringify(request), {
          ...BODY_FIELD,
          rowId: id,
        }),
        nextAttemptAt: new Date(Date.now() + 3_600_000),
        deadlineAt: new Date(Date.now() + 86_400_000),
      });
      return id;
    };
    const base = { mailbox: ownerBox, to: ["carol@example.test"], cc: [], bcc: [] };
    const naming = await sealedRow({ ...base, subject: "Hi", text: "Ask", replyTo: alice });
    const inText = await sealedRow({ ...base, subject: "Hi", text: `Write to ${alice}.` });
    // jimalice@… is someone else: their message stays queued.
    const other = await sealedRow({ ...base, subject: "Hi", text: `Write to jim${alice}.` });

    const result = await eraseNow(owner, alice);
    expect(result).toMatchObject({ kind: "erased", receipt: { messages: { queuedCancelled: 2 } } });
    const after = await db
      .select({ id: messages.id, status: messages.status, body: messages.bodySealed })
      .from(messages)
      .where(inArray(messages.id, [naming, inText, other]));
    const byId = new Map(after.map((r) => [r.id, r]));
    expect(byId.get(naming)).toMatchObject({ status: "cancelled", body: null });
    expect(byId.get(inText)).toMatchObject({ status: "cancelled", body: null });
    expect(byId.get(other)).toMatchObject({ status: "queued" });
    await db.delete(messages).where(eq(messages.id, other));
  }, 60_000);

  it("cancels what still waits to go out from the person's mailboxes or with their API keys, before both are deleted", async () => {
    const db = await getDb();
    const owner = await createOwner();
    const user = await createUser("leaving");
    await joinOrganization({ orgId: owner.orgId, inviterId: owner.user.id, user, role: "admin" });
    const person = { user, orgId: owner.orgId };
    const theirBox = await connectMailbox(person);
    const ownerBox = await connectMailbox(owner);
    const { key } = await makeApiKey(person);
    const waiting = (values: {
      mailboxId: string;
      senderType: "user" | "api_key";
      senderId: string;
    }) => ({
      ...values,
      orgId: owner.orgId,
      recipients: { to: ["customer@example.test"], cc: [], bcc: [] },
      recipientCount: 1,
      subject: "Waiting",
      status: "queued" as const,
      bodySealed: "v1.sealed-body",
      nextAttemptAt: new Date(Date.now() + 3_600_000),
      deadlineAt: new Date(Date.now() + 86_400_000),
    });
    const rows = await db
      .insert(messages)
      .values([
        // With their key, from the owner's mailbox; from their mailbox, by the owner.
        waiting({ mailboxId: ownerBox, senderType: "api_key", senderId: key.id }),
        waiting({ mailboxId: theirBox, senderType: "user", senderId: owner.user.id }),
        // The owner's own message stays queued.
        waiting({ mailboxId: ownerBox, senderType: "user", senderId: owner.user.id }),
      ])
      .returning({ id: messages.id });
    expect(await describeSubject(db, owner.orgId, user.email ?? "")).toMatchObject({
      queuedMessages: 2,
    });

    const result = await eraseNow(owner, user.email ?? "");
    expect(result).toMatchObject({ kind: "erased", receipt: { messages: { queuedCancelled: 2 } } });
    const after = await db
      .select({ id: messages.id, status: messages.status, body: messages.bodySealed })
      .from(messages)
      .where(
        inArray(
          messages.id,
          rows.map((r) => r.id),
        ),
      );
    const byId = new Map(after.map((r) => [r.id, r]));
    expect(byId.get(rows[0]?.id ?? "")).toMatchObject({ status: "cancelled", body: null });
    expect(byId.get(rows[1]?.id ?? "")).toMatchObject({ status: "cancelled", body: null });
    expect(byId.get(rows[2]?.id ?? "")).toMatchObject({ status: "queued" });
    // Its body is no real sealed value: gone, so no later test's queue or key rotation meets it.
    await db.delete(messages).where(eq(messages.id, rows[2]?.id ?? ""));
  }, 60_000);

  it("a stranger's organisation learns nothing of an address's account, and can never delete it", async () => {
    const db = await getDb();
    const stranger = await createOwner();
    const person = await createOwner();
    const email = person.user.email ?? "";
    // No membership left anywhere (they were removed from their only organisation).
    await db.delete(memberships).where(eq(memberships.userId, person.user.id));

    const summary = await describeSubject(db, stranger.orgId, email);
    expect(summary).toMatchObject({ user: null, role: null, account: null });
    const exported = await exportText({
      kind: "organization",
      orgId: stranger.orgId,
      orgName: "S",
      email,
      userId: person.user.id,
    });
    expect(exported).toMatchObject({ subject: { email, hasAccount: null }, profile: null });

    const result = await eraseNow(stranger, email);
    expect(result).toMatchObject({
      kind: "erased",
      receipt: { deleted: { userAccount: false, memberships: 0 }, kept: null },
    });
    const [still] = await db
      .select({ id: users.id })
      .from(users)
      .where(eq(users.id, person.user.id));
    expect(still?.id).toBe(person.user.id);
  }, 60_000);

  it("a compliance officer may not erase an owner or an administrator (it removes them); an owner may", async () => {
    const db = await getDb();
    const owner = await createOwner();
    const officer = await createUser("officer");
    const admin = await createUser("admin");
    await joinOrganization({
      orgId: owner.orgId,
      inviterId: owner.user.id,
      user: officer,
      role: "compliance",
    });
    await joinOrganization({
      orgId: owner.orgId,
      inviterId: owner.user.id,
      user: admin,
      role: "admin",
    });
    const asOfficer = officerOf({ user: officer, orgId: owner.orgId }, "compliance");
    const request = await recordDataRequest(asOfficer, {
      kind: "erasure",
      email: admin.email ?? "",
      receivedAt: new Date(),
    });
    expect(await eraseSubject(asOfficer, request.id)).toMatchObject({
      kind: "refused",
      reason: expect.stringMatching(/only an owner removes an owner or an administrator/),
    });
    const still = await db.select().from(memberships).where(eq(memberships.userId, admin.id));
    expect(still).toHaveLength(1);
    const [refusal] = await auditEventsOf(owner.orgId, {
      action: "privacy.erasure_refused",
      targetId: request.id,
    });
    expect(refusal?.metadata).toMatchObject({ reason: "owner_only" });

    expect(await eraseSubject(officerOf(owner), request.id)).toMatchObject({ kind: "erased" });
  }, 60_000);

  it("refuses to erase the organisation's last owner, and erases nothing", async () => {
    const db = await getDb();
    const owner = await createOwner();
    const request = await recordDataRequest(officerOf(owner), {
      kind: "erasure",
      email: owner.user.email ?? "",
      receivedAt: new Date(),
    });
    const result = await eraseSubject(officerOf(owner), request.id);
    expect(result.kind).toBe("refused");
    const rows = await db.select().from(memberships).where(eq(memberships.userId, owner.user.id));
    expect(rows).toHaveLength(1);
    const [row] = await db.select().from(dataRequests).where(eq(dataRequests.id, request.id));
    expect(row?.status).toBe("open");
  });

  it("in a person's other organisation, erasure takes this organisation's data and keeps the account", async () => {
    const db = await getDb();
    const a = await createOwner();
    const b = await createOwner();
    const user = await createUser("two-orgs");
    await joinOrganization({ orgId: a.orgId, inviterId: a.user.id, user, role: "sender" });
    await joinOrganization({ orgId: b.orgId, inviterId: b.user.id, user, role: "sender" });
    // A message they sent from A's mailbox, and a request they recorded in A.
    const box = await connectMailbox(a);
    const sent = await sendAs(
      { user, orgId: a.orgId },
      box,
      ["client@example.test"],
      "Sent by them",
    );
    const theirs = await recordDataRequest(officerOf({ user, orgId: a.orgId }), {
      kind: "export",
      email: "client@example.test",
      receivedAt: new Date(),
    });
    const request = await recordDataRequest(officerOf(a), {
      kind: "erasure",
      email: user.email ?? "",
      receivedAt: new Date(),
    });
    const result = await eraseSubject(officerOf(a), request.id);
    expect(result).toMatchObject({
      kind: "erased",
      receipt: { deleted: { memberships: 1, userAccount: false } },
    });
    const left = await db.select().from(memberships).where(eq(memberships.userId, user.id));
    expect(left.map((m) => m.orgId)).toEqual([b.orgId]);
    // A's pages no longer name them, though their account lives on in B.
    const listed = await listRecentMessages({ db, orgId: a.orgId });
    expect(listed.find((m) => m.id === sent)?.senderLabel).toBe("former member");
    const { rows: requests } = await listDataRequests({ db, orgId: a.orgId });
    expect(requests.find((r) => r.id === theirs.id)?.requestedBy).toBeNull();
    expect(JSON.stringify([listed, requests])).not.toContain(user.email);
    // B's record of them is B's: untouched.
    const [inB] = await db
      .select({ n: sql<number>`count(*)::int` })
      .from(auditEvents)
      .where(
        sql`${auditEvents.chain} = ${b.orgId} and ${auditEvents.personal}::text like ${`%${user.email}%`}`,
      );
    expect(inB?.n).toBeGreaterThan(0);
  }, 60_000);
});

describe("requests", () => {
  it("are due one calendar month after receipt, and overdue after that while open", () => {
    expect(dueDateFor(new Date("2026-01-31T10:00:00Z")).toISOString()).toBe(
      "2026-02-28T10:00:00.000Z",
    );
    expect(dueDateFor(new Date("2026-03-15T10:00:00Z")).toISOString()).toBe(
      "2026-04-15T10:00:00.000Z",
    );
    const dueAt = new Date("2026-04-15T10:00:00Z");
    expect(isOverdue({ status: "open", dueAt }, new Date("2026-04-16T00:00:00Z"))).toBe(true);
    expect(isOverdue({ status: "completed", dueAt }, new Date("2026-04-16T00:00:00Z"))).toBe(false);
  });

  it("record where the officer recorded one from", async () => {
    const owner = await createOwner("privacy-where");
    const request = await recordDataRequest(officerOf(owner), {
      kind: "export",
      email: "someone@example.test",
      receivedAt: new Date(),
    });
    const db = await getDb();
    const [event] = await db
      .select({ ip: auditEvents.ip, userAgent: auditEvents.userAgent })
      .from(auditEvents)
      .where(eq(auditEvents.targetId, request.id));
    expect(event).toEqual({ ip: REQUEST.ip, userAgent: REQUEST.userAgent });
  });
});

describe("export", () => {
  it("holds each part, never a token, hash or session token, and nothing of another organisation", async () => {
    const a = await createOwner();
    const b = await createOwner();
    const user = await createUser("exported");
    await joinOrganization({ orgId: a.orgId, inviterId: a.user.id, user, role: "admin" });
    await joinOrganization({ orgId: b.orgId, inviterId: b.user.id, user, role: "admin" });
    const person = { user, orgId: a.orgId };
    const box = await connectMailbox(person);
    const key = await makeApiKey(person);
    await sendAs(person, box, ["friend@example.test"], "From A");
    const bBox = await connectMailbox({ user, orgId: b.orgId });
    await sendAs({ user, orgId: b.orgId }, bBox, ["friend@example.test"], "From B");
    const stored = await readMailbox(box);

    const officer = await exportText({
      kind: "organization",
      orgId: a.orgId,
      orgName: "A",
      email: user.email ?? "",
      userId: user.id,
    });
    expect(officer).toMatchObject({ schema: "mailwarden.subject-export", schemaVersion: 1 });
    expect(Object.keys(officer.explanation as object)).toEqual(
      expect.arrayContaining(["profile", "memberships", "sessions", "organizations"]),
    );
    const [org] = officer.organizations;
    expect(org?.mailboxes).toHaveLength(1);
    expect(org?.apiKeys).toHaveLength(1);
    expect(org?.messagesSent).toHaveLength(1);
    const text = JSON.stringify(officer);
    for (const secret of [stored.accessTokenEnc, stored.refreshTokenEnc, key.token]) {
      expect(text).not.toContain(secret ?? "never");
    }
    expect(text).not.toContain(b.orgId);
    expect(text).not.toContain("From B");

    const own = await exportText({ kind: "self", userId: user.id, email: user.email ?? "" });
    expect(own.organizations.map((o) => o.orgId)).toEqual([a.orgId, b.orgId]);
    expect(JSON.stringify(own)).toContain("From B");
  }, 60_000);

  it("shows a person the IP address and user agent of their own events only, never another actor's", async () => {
    const db = await getDb();
    const owner = await createOwner();
    const sender = await createMember(owner.orgId, "sender");
    const own = { ip: "192.0.2.61", userAgent: "sender-own-browser" };
    const others = { ip: "203.0.113.62", userAgent: "owner-other-browser" };
    // The sender acts; the owner acts on the sender; the owner's event names the sender's address.
    await writeAuditEvent(db, {
      orgId: owner.orgId,
      actor: { type: "user", id: sender.id, label: sender.email },
      action: "api_key.created",
      target: { type: "api_key", id: randomUUID() },
      outcome: "success",
      request: own,
    });
    await writeAuditEvent(db, {
      orgId: owner.orgId,
      actor: { type: "user", id: owner.user.id, label: owner.user.email },
      action: "member.role_changed",
      target: { type: "user", id: sender.id },
      outcome: "success",
      request: others,
      metadata: { role: "sender" },
    });
    await writeAuditEvent(db, {
      orgId: owner.orgId,
      actor: { type: "user", id: owner.user.id, label: owner.user.email },
      action: "member.invited",
      target: { type: "invitation", id: randomUUID() },
      outcome: "success",
      request: others,
      personal: { email: sender.email },
    });

    const exported = await exportText({
      kind: "self",
      userId: sender.id,
      email: sender.email ?? "",
    });
    const events = (exported.organizations[0]?.auditEvents ?? []) as {
      actorId: string | null;
      actorLabel: string | null;
      ip: string | null;
      userAgent: string | null;
    }[];
    const byOthers = events.filter((e) => e.actorId !== sender.id);
    const byThemselves = events.filter((e) => e.actorId === sender.id);
    expect(byOthers).toHaveLength(2);
    for (const event of byOthers) {
      expect(event).toMatchObject({ ip: null, userAgent: null, actorLabel: owner.user.email });
    }
    expect(byThemselves).toEqual([expect.objectContaining(own)]);
    const text = JSON.stringify(exported);
    expect(text).not.toContain(others.ip);
    expect(text).not.toContain(others.userAgent);
  });

  it("shows a person their own address in an event's personal fields and target, never another person's", async () => {
    const db = await getDb();
    const owner = await createOwner();
    const admin = await createMember(owner.orgId, "admin");
    const person = { user: admin, orgId: owner.orgId };
    const email = admin.email ?? "";
    const [bob, carol, dave] = ["bob", "carol", "dave"].map(
      (name) => `${name}-${randomUUID().slice(0, 8)}@example.test`,
    );
    // The admin's own acts that name others: an invitation, one refused (its target is the
    // invitee's address), a request recorded about a third person.
    const asAdmin = memberContext(owner.orgId, admin, "admin", REQUEST);
    await inviteMember(db, asAdmin, { email: bob ?? "", role: "sender" });
    await expect(inviteMember(db, asAdmin, { email: dave ?? "", role: "owner" })).rejects.toThrow();
    await recordDataRequest(officerOf(person), {
      kind: "export",
      email: carol ?? "",
      receivedAt: new Date(),
    });
    // What is theirs: a request about them, and a mailbox they connected.
    await recordDataRequest(officerOf(owner), { kind: "export", email, receivedAt: new Date() });
    const box = `their-box-${randomUUID().slice(0, 8)}@example.test`;
    await connectMailbox(person, box);

    const exported = await exportText({ kind: "self", userId: admin.id, email });
    const text = JSON.stringify(exported);
    for (const other of [bob, carol, dave]) expect(text).not.toContain(other);
    const events = (exported.organizations[0]?.auditEvents ?? []) as {
      action: string;
      actorId: string | null;
      personal: Record<string, unknown>;
    }[];
    // The events themselves are still there: only the other people's addresses are withheld.
    expect(events.filter((e) => e.action === "member.invited")).toHaveLength(2);
    expect(events).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          action: "privacy.request_recorded",
          actorId: owner.user.id,
          personal: { email },
        }),
        expect.objectContaining({
          action: "mailbox.connected",
          personal: expect.objectContaining({ address: box }),
        }),
      ]),
    );
  }, 60_000);

  it("shows a person the former address of a mailbox they connected under it, never one that was someone else's", async () => {
    const owner = await createOwner();
    const admin = await createMember(owner.orgId, "admin");
    const person = { user: admin, orgId: owner.orgId };
    const email = admin.email ?? "";
    const [account, before, after, otherAccount, alice] = [
      "account",
      "before",
      "after",
      "other",
      "alice",
    ].map((name) => `${name}-${randomUUID().slice(0, 8)}@example.test`);
    // Their own mailbox, connected under one address and reconnected after the provider
    // reported another for the same account.
    bed.oauth.directory.set(account ?? "", { email: before });
    await connectDemoMailbox(person, { email: account });
    bed.oauth.directory.set(account ?? "", { email: after });
    await connectDemoMailbox(person, { email: account });
    // Alice's mailbox, connected by the owner, that the provider later gives the admin's
    // address: they reconnect it, but its former address was never theirs.
    bed.oauth.directory.set(otherAccount ?? "", { email: alice });
    await connectDemoMailbox(owner, { email: otherAccount });
    bed.oauth.directory.set(otherAccount ?? "", { email });
    await connectDemoMailbox(person, { email: otherAccount });

    const exported = await exportText({ kind: "self", userId: admin.id, email });
    expect(JSON.stringify(exported)).not.toContain(alice);
    const events = (exported.organizations[0]?.auditEvents ?? []) as {
      action: string;
      personal: Record<string, unknown>;
    }[];
    const reconnects = events.filter(
      (e) => e.action === "mailbox.connected" && "previousAddress" in e.personal,
    );
    expect(reconnects.map((e) => e.personal)).toEqual([
      { address: after, previousAddress: before },
      { address: email, previousAddress: "[another person's address, withheld]" },
    ]);
  }, 60_000);

  it("withholds the IP address and user agent of calls made with the person's own API key", async () => {
    const db = await getDb();
    const owner = await createOwner();
    const admin = await createMember(owner.orgId, "admin");
    const { key } = await makeApiKey({ user: admin, orgId: owner.orgId });
    const caller = { ip: "203.0.113.77", userAgent: "their-service/1.0" };
    // An event made with their key that names them.
    await writeAuditEvent(db, {
      orgId: owner.orgId,
      actor: { type: "api_key", id: key.id, label: key.name },
      action: "message.refused",
      outcome: "denied",
      request: caller,
      metadata: { reason: "validation" },
      personal: { email: admin.email },
    });

    const exported = await exportText({ kind: "self", userId: admin.id, email: admin.email ?? "" });
    const events = (exported.organizations[0]?.auditEvents ?? []) as Record<string, unknown>[];
    expect(events).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ actorId: key.id, ip: null, userAgent: null }),
        // Creating the key was their own act: its address is theirs.
        expect.objectContaining({ action: "api_key.created", ip: "203.0.113.9" }),
      ]),
    );
    expect(JSON.stringify(exported)).not.toContain(caller.userAgent);
  }, 60_000);

  it("shows, of a message or notification email, only the person's own place among its recipients", async () => {
    const db = await getDb();
    const owner = await createOwner();
    const address = `subject-${randomUUID().slice(0, 8)}@example.test`;
    const [to, cc, bcc, naming] = ["to", "cc", "bcc", "naming"].map(
      (name) => `${name}-${randomUUID().slice(0, 8)}@example.test`,
    );
    const sent = {
      orgId: owner.orgId,
      senderType: "user",
      senderId: owner.user.id,
      status: "sent" as const,
    };
    await db.insert(messages).values([
      {
        ...sent,
        recipients: { to: [to ?? ""], cc: [cc ?? ""], bcc: [`Them <${address}>`, bcc ?? ""] },
        recipientCount: 4,
        subject: "To them among others",
      },
      {
        ...sent,
        recipients: { to: [naming ?? ""], cc: [], bcc: [] },
        recipientCount: 1,
        subject: `About ${address}`,
      },
    ]);
    await insertOutboxRows({
      db,
      orgId: owner.orgId,
      recipients: [address, owner.user.email ?? ""],
      event: { kind: "member_added", title: `New member: ${address}`, body: `${address} joined.` },
    });

    const exported = await exportText({
      kind: "organization",
      orgId: owner.orgId,
      orgName: "A",
      email: address,
      userId: null,
    });
    const text = JSON.stringify(exported);
    for (const other of [to, cc, bcc, naming, owner.user.email]) {
      expect(text).not.toContain(other ?? "never");
    }
    const [org] = exported.organizations;
    expect(org?.messagesAddressed).toMatchObject([
      {
        subject: "To them among others",
        recipients: { to: [], cc: [], bcc: [`Them <${address}>`] },
      },
    ]);
    expect(org?.messagesNaming).toMatchObject([
      { subject: `About ${address}`, recipients: { to: [], cc: [], bcc: [] } },
    ]);
    expect(org?.notificationEmails).toHaveLength(2);
    expect(org?.notificationEmails).toEqual(
      expect.arrayContaining([expect.objectContaining({ recipient: address })]),
    );
  }, 60_000);

  it("holds every row that names an address, each in its part, so that what an erasure deletes was exported first", async () => {
    const db = await getDb();
    const a = await createOwner();
    const b = await createOwner();
    const address = `exported-${randomUUID().slice(0, 8)}@example.test`;
    const box = await connectMailbox(a);
    await sendAs(a, box, [address], "Addressed in A");
    // Not to them, but naming them: an erasure rewrites its subject.
    await sendAs(a, box, ["carol@example.test"], `About ${address}`);
    await sendAs(a, box, ["carol@example.test"], "About someone else");
    await recordDataRequest(officerOf(a), {
      kind: "export",
      email: address,
      receivedAt: new Date(),
    });
    for (const org of [a, b]) {
      await db.insert(invitations).values({ orgId: org.orgId, email: address, role: "sender" });
      await db.insert(notices).values({
        orgId: org.orgId,
        kind: "mailbox",
        title: `Notice in ${org === a ? "A" : "B"}`,
        body: `The mailbox ${address} needs attention.`,
      });
    }
    await insertOutboxRows({
      db,
      orgId: a.orgId,
      recipients: [address],
      event: { kind: "digest", title: "Your digest", body: "Nothing new." },
    });
    // The revoke-all incident job took a mailbox with their address.
    const [job] = await db
      .insert(jobs)
      .values({ kind: "revoke_all", orgId: a.orgId, status: "done", total: 1, done: 1 })
      .returning({ id: jobs.id });
    await db.insert(jobItems).values({
      jobId: job?.id ?? "",
      itemId: randomUUID(),
      label: address,
      state: "finished",
      result: "revoked",
    });
    await insertWebhookDeliveries(a.orgId, [
      {
        body: JSON.stringify({ type: "message.sent", data: { to: [address] } }),
        status: "pending",
      },
      {
        body: JSON.stringify({ type: "message.sent", data: { to: ["x@example.test"] } }),
        status: "delivered",
      },
    ]);

    const exported = await exportText({
      kind: "organization",
      orgId: a.orgId,
      orgName: "A",
      email: address,
      userId: null,
    });
    const [org] = exported.organizations;
    expect(org?.invitations).toMatchObject([{ role: "sender" }]);
    expect(org?.notices).toMatchObject([{ title: "Notice in A" }]);
    expect(org?.notificationEmails).toMatchObject([{ recipient: address, sentAt: null }]);
    // The body as the endpoint received it, as JSON; the other delivery does not name them.
    expect(org?.webhookDeliveries).toMatchObject([{ body: { data: { to: [address] } } }]);
    expect(org?.dataRequests).toMatchObject([{ kind: "export", status: "open" }]);
    expect(org?.jobItems).toMatchObject([{ kind: "revoke_all", result: "revoked" }]);
    expect(org?.messagesAddressed).toMatchObject([{ subject: "Addressed in A" }]);
    expect(org?.messagesNaming).toMatchObject([{ subject: `About ${address}` }]);
    expect(JSON.stringify(exported)).not.toContain("Notice in B");

    // Every table that holds the address has its part in the export (a new table must add one).
    const partOf: Record<string, string> = {
      messages: "messagesAddressed",
      audit_events: "auditEvents",
      invitations: "invitations",
      notices: "notices",
      notification_outbox: "notificationEmails",
      webhook_deliveries: "webhookDeliveries",
      data_requests: "dataRequests",
      job_items: "jobItems",
    };
    const tables = [...new Set((await scanDatabase(address)).map((c) => c.split(".")[0] ?? ""))];
    expect(tables.length).toBeGreaterThanOrEqual(8);
    for (const table of tables) {
      const part = partOf[table];
      expect(part, `no export part for ${table}`).toBeDefined();
      expect(org?.[part as string]?.length, `export part ${part}`).toBeGreaterThan(0);
    }

    const erased = await eraseNow(a, address);
    expect(erased).toMatchObject({
      kind: "erased",
      receipt: {
        deleted: { invitations: 1, notices: 1, notificationEmails: 1, webhookDeliveries: 1 },
      },
    });
    // What A keeps names them only by pseudonym; B's invitation and notice are B's to erase.
    expect(await scanDatabase(address)).toEqual(["invitations.email", "notices.body"]);
  }, 60_000);
});
