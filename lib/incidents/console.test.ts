import { and, eq, inArray } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { getDb } from "@/db";
import { listNoticesForMailbox } from "@/db/queries/mailboxes";
import { recordEmailVerification } from "@/db/queries/users";
import { auditEvents, invitations, sessions } from "@/db/schema";
import { inviteMember } from "@/lib/auth/members";
import { isOperator } from "@/lib/auth/operators";
import { env } from "@/lib/env";
import { sendMessage } from "@/lib/mail/send";
import { connectMailbox, type SendTestbed, startSendTestbed } from "@/lib/mail/testing";
import { closeAllMailboxTransports } from "@/lib/mail/transport";
import { resetMailProviders } from "@/lib/oauth/providers";
import { connectDemoMailbox, readMailbox, setMailbox } from "@/lib/oauth/testing/fixtures";
import { memberContext } from "@/lib/testing/context";
import { createOwner, createSession, createUser, joinOrganization } from "@/lib/testing/factories";
import { pauseMailbox, signEveryoneOut } from "./console";

const REQUEST = { ip: "203.0.113.6", userAgent: "vitest" };

describe("signing everyone out", () => {
  it("ends every session of the organisation's members but the caller's current one, and no one else's", async () => {
    const owner = await createOwner("signout");
    const member = await createUser("signout-member");
    await joinOrganization({
      orgId: owner.orgId,
      inviterId: owner.user.id,
      user: member,
      role: "sender",
    });
    const outsider = await createOwner("signout-outsider");
    const kept = await createSession(owner.user.id);
    const ownerElsewhere = await createSession(owner.user.id);
    const memberSession = await createSession(member.id);
    const outsiderSession = await createSession(outsider.user.id);
    const db = await getDb();

    // Sent from the stolen session: it would let the intruder back in after the sign-out.
    const planted = `planted-${Date.now()}@example.test`;
    await inviteMember(db, memberContext(owner.orgId, owner.user, "owner", REQUEST), {
      email: planted,
      role: "admin",
    });

    const result = await signEveryoneOut({
      db,
      ctx: memberContext(owner.orgId, owner.user, "owner", REQUEST),
      keepSessionToken: kept,
      reason: "laptop stolen",
    });
    expect(result).toEqual({ sessions: 2, people: 2, invitationsWithdrawn: 1 });
    expect(await db.select().from(invitations).where(eq(invitations.email, planted))).toEqual([]);
    const [withdrawn] = await db
      .select({ metadata: auditEvents.metadata })
      .from(auditEvents)
      .where(and(eq(auditEvents.orgId, owner.orgId), eq(auditEvents.action, "invitation.revoked")));
    expect(withdrawn?.metadata).toMatchObject({ reason: "sessions_revoked" });
    const left = await db
      .select({ token: sessions.sessionToken })
      .from(sessions)
      .where(
        inArray(sessions.sessionToken, [kept, ownerElsewhere, memberSession, outsiderSession]),
      );
    expect(left.map((r) => r.token).sort()).toEqual([kept, outsiderSession].sort());
    const [event] = await db
      .select()
      .from(auditEvents)
      .where(
        and(eq(auditEvents.orgId, owner.orgId), eq(auditEvents.action, "sessions.revoked_all")),
      );
    expect(event?.metadata).toMatchObject({ sessions: 2, reason: "laptop stolen" });
  });
});

describe("pausing one mailbox", () => {
  let bed: SendTestbed;
  beforeAll(async () => {
    bed = await startSendTestbed();
  });
  afterAll(async () => {
    closeAllMailboxTransports();
    resetMailProviders();
    await bed?.close();
  });

  const send = (owner: { user: { id: string }; orgId: string }, mailbox: string) =>
    sendMessage({
      ctx: memberContext(owner.orgId, owner.user, "owner", REQUEST),
      purpose: "dashboard_test",
      body: {
        type: "value",
        value: { mailbox, to: ["rcpt@example.test"], subject: "Pause", text: "x" },
      },
    });

  it("stops sends from that mailbox until it is resumed; another organisation cannot pause it", async () => {
    const owner = await createOwner("pausebox");
    const stranger = await createOwner("pausebox-other");
    const mailboxId = await connectMailbox(owner);
    const db = await getDb();
    const ownerCtx = memberContext(owner.orgId, owner.user, "owner", REQUEST);

    expect(
      await pauseMailbox({
        db,
        ctx: memberContext(stranger.orgId, stranger.user, "owner", REQUEST),
        mailboxId,
        paused: true,
        reason: "x",
      }),
    ).toBeNull();
    expect((await readMailbox(mailboxId)).status).toBe("connected");

    const paused = await pauseMailbox({
      db,
      ctx: ownerCtx,
      mailboxId,
      paused: true,
      reason: "odd sends",
    });
    expect(paused?.status).toBe("paused");
    const [pausedEvent] = await db
      .select()
      .from(auditEvents)
      .where(and(eq(auditEvents.targetId, mailboxId), eq(auditEvents.action, "mailbox.paused")));
    expect(pausedEvent?.metadata).toMatchObject({ status: "paused", previousStatus: "connected" });
    const inbox = await bed.inboxCount();
    expect((await send(owner, mailboxId)).kind).toBe("paused");
    expect(await bed.inboxCount()).toBe(inbox);

    await pauseMailbox({
      db,
      ctx: ownerCtx,
      mailboxId,
      paused: false,
      reason: "",
    });
    expect((await readMailbox(mailboxId)).status).toBe("connected");
    expect((await send(owner, mailboxId)).kind).toBe("sent");
    const actions = await db
      .select({ action: auditEvents.action })
      .from(auditEvents)
      .where(
        and(
          eq(auditEvents.orgId, owner.orgId),
          inArray(auditEvents.action, ["mailbox.paused", "mailbox.resumed"]),
        ),
      );
    expect(actions.map((a) => a.action).sort()).toEqual(["mailbox.paused", "mailbox.resumed"]);
  }, 120_000);

  it("resuming a mailbox that needed an administrator leaves it waiting for one: no send tried, nobody told again", async () => {
    const owner = await createOwner("pause-admin");
    const mailboxId = await connectMailbox(owner);
    const db = await getDb();
    const ctx = memberContext(owner.orgId, owner.user, "owner", REQUEST);
    let authCalls = 0;
    // The tenant's administrator has not enabled SMTP AUTH, before or after the pause.
    bed.authOverride = () => {
      authCalls++;
      return {
        code: 535,
        message:
          "5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Mailbox.",
      };
    };
    try {
      expect((await send(owner, mailboxId)).kind).toBe("provider_failed");
      expect((await readMailbox(mailboxId)).status).toBe("admin_action_required");
      const notices = (await listNoticesForMailbox({ db, orgId: owner.orgId, mailboxId })).length;
      expect(notices).toBeGreaterThan(0);
      const calls = authCalls;

      await pauseMailbox({ db, ctx, mailboxId, paused: true, reason: "audit" });
      const resumed = await pauseMailbox({ db, ctx, mailboxId, paused: false, reason: "" });
      expect(resumed?.status).toBe("admin_action_required");
      expect(await readMailbox(mailboxId)).toMatchObject({
        status: "admin_action_required",
        lastErrorCode: "smtp_535_5.7.139",
      });
      const inbox = await bed.inboxCount();
      const refused = await send(owner, mailboxId);
      expect(refused.kind).toBe("conflict");
      expect(JSON.stringify(refused)).toContain("Set-CASMailbox");
      expect(authCalls).toBe(calls);
      expect(await bed.inboxCount()).toBe(inbox);
      expect((await listNoticesForMailbox({ db, orgId: owner.orgId, mailboxId })).length).toBe(
        notices,
      );

      // Reconnected while paused: the recorded problem is gone, so it resumes connected.
      await pauseMailbox({ db, ctx, mailboxId, paused: true, reason: "reconnect" });
      const { address } = await readMailbox(mailboxId);
      const again = await connectDemoMailbox(owner, { email: address, mailboxId });
      expect(again.result).toMatchObject({ kind: "connected", mailboxId });
      expect((await pauseMailbox({ db, ctx, mailboxId, paused: false, reason: "" }))?.status).toBe(
        "connected",
      );
    } finally {
      bed.authOverride = null;
    }
  }, 120_000);

  it("resumes connected when the pause recorded no earlier status (events from before it did)", async () => {
    const owner = await createOwner("pause-legacy");
    const mailboxId = await connectMailbox(owner);
    await setMailbox(mailboxId, { status: "paused" });
    const resumed = await pauseMailbox({
      db: await getDb(),
      ctx: memberContext(owner.orgId, owner.user, "owner", REQUEST),
      mailboxId,
      paused: false,
      reason: "",
    });
    expect(resumed?.status).toBe("connected");
  });
});

describe("operators", () => {
  it("are the people named in OPERATOR_EMAILS whose provider confirmed that address, and nobody else", async () => {
    const db = await getDb();
    const verified = await createUser("operator");
    const claimed = await createUser("claimed");
    const someone = await createUser("someone");
    await recordEmailVerification({ db, userId: verified.id, isVerified: true });
    await recordEmailVerification({ db, userId: claimed.id, isVerified: false });
    const list = env().OPERATOR_EMAILS;
    // The settings are read once per process; the test names its people for its own run.
    list.push((verified.email ?? "").toLowerCase(), claimed.email ?? "");
    try {
      expect(await isOperator({ db, userId: verified.id })).toBe(true);
      expect(await isOperator({ db, userId: claimed.id })).toBe(false);
      expect(await isOperator({ db, userId: someone.id })).toBe(false);
    } finally {
      list.splice(list.length - 2, 2);
    }
  });
});
