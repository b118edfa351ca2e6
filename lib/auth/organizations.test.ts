import { eq } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { getDb } from "@/db";
import { getActiveMembership, listMembershipsOfUser } from "@/db/queries/organizations";
import { invitations, sessions } from "@/db/schema";
import { auditEventsOf } from "@/lib/testing/audit";
import { memberContext } from "@/lib/testing/context";
import { createOwner, createSession } from "@/lib/testing/factories";
import { inviteMember, settleMemberships } from "./members";
import { acceptInvitation, declineInvitation, switchOrganization } from "./organizations";

async function eventsIn(orgId: string) {
  return (await auditEventsOf(orgId)).map(({ action, outcome, actorId }) => ({
    action,
    outcome,
    actorId,
  }));
}

async function sessionOrg(sessionToken: string) {
  const db = await getDb();
  const [row] = await db
    .select({ activeOrgId: sessions.activeOrgId })
    .from(sessions)
    .where(eq(sessions.sessionToken, sessionToken));
  return row?.activeOrgId;
}

/** Organisation A's owner invites B's owner, an existing user with an organisation of their own. */
async function invitedOwnerOfB(role: "sender" | "admin" | "owner" = "sender") {
  const db = await getDb();
  const a = await createOwner("owner-a");
  const b = await createOwner("owner-b");
  await inviteMember(db, memberContext(a.orgId, a.user, "owner"), {
    email: b.user.email ?? "",
    role,
  });
  const [invite] = await db
    .select({ id: invitations.id })
    .from(invitations)
    .where(eq(invitations.orgId, a.orgId));
  if (!invite) throw new Error("no invitation");
  const sessionToken = await createSession(b.user.id);
  return { a, b, invitationId: invite.id, sessionToken };
}

describe("invitations wait for the invitee", () => {
  it("signing in again leaves B in B with the invitation still waiting", async () => {
    const db = await getDb();
    const { a, b, sessionToken } = await invitedOwnerOfB();
    await settleMemberships(db, b.user, { isEmailVerified: true });
    expect(await listMembershipsOfUser({ db, userId: b.user.id })).toEqual([
      expect.objectContaining({ orgId: b.orgId, role: "owner" }),
    ]);
    expect(await sessionOrg(sessionToken)).toBe(b.orgId);
    expect(await db.select().from(invitations).where(eq(invitations.orgId, a.orgId))).toHaveLength(
      1,
    );
  });

  it("accepting joins with the invited role, audits it in the inviting organisation and makes it active", async () => {
    const db = await getDb();
    const { a, b, invitationId, sessionToken } = await invitedOwnerOfB("sender");
    const answer = await acceptInvitation(
      db,
      {
        ctx: memberContext(b.orgId, b.user, "owner", { ip: "203.0.113.9", userAgent: "test" }),
        sessionToken,
      },
      invitationId,
    );
    expect(answer).toMatchObject({ ok: true, orgId: a.orgId, role: "sender" });
    expect(await listMembershipsOfUser({ db, userId: b.user.id })).toEqual([
      expect.objectContaining({ orgId: b.orgId, role: "owner" }),
      expect.objectContaining({ orgId: a.orgId, role: "sender" }),
    ]);
    expect(await sessionOrg(sessionToken)).toBe(a.orgId);
    expect(await db.select().from(invitations).where(eq(invitations.orgId, a.orgId))).toHaveLength(
      0,
    );
    expect(await eventsIn(a.orgId)).toContainEqual({
      action: "invitation.accepted",
      outcome: "success",
      actorId: b.user.id,
    });
    // A second click finds nothing to accept.
    expect(
      await acceptInvitation(
        db,
        { ctx: memberContext(b.orgId, b.user, "owner"), sessionToken },
        invitationId,
      ),
    ).toEqual({
      ok: false,
      reason: "not_found",
    });
  });

  it("an address the provider did not confirm can neither accept nor decline", async () => {
    const db = await getDb();
    const { a, b, invitationId, sessionToken } = await invitedOwnerOfB();
    await settleMemberships(db, b.user, { isEmailVerified: false });
    expect(
      await acceptInvitation(
        db,
        { ctx: memberContext(b.orgId, b.user, "owner"), sessionToken },
        invitationId,
      ),
    ).toEqual({
      ok: false,
      reason: "unverified",
    });
    expect(
      await declineInvitation(db, memberContext(b.orgId, b.user, "owner"), invitationId),
    ).toEqual({
      ok: false,
      reason: "unverified",
    });
    expect(await listMembershipsOfUser({ db, userId: b.user.id })).toHaveLength(1);
    expect(await sessionOrg(sessionToken)).toBe(b.orgId);
    expect(await db.select().from(invitations).where(eq(invitations.orgId, a.orgId))).toHaveLength(
      1,
    );
  });

  it("nobody answers an invitation addressed to someone else", async () => {
    const db = await getDb();
    const { a, invitationId } = await invitedOwnerOfB();
    const stranger = await createOwner("stranger");
    const strangerSession = await createSession(stranger.user.id);
    expect(
      await acceptInvitation(
        db,
        {
          ctx: memberContext(stranger.orgId, stranger.user, "owner"),
          sessionToken: strangerSession,
        },
        invitationId,
      ),
    ).toEqual({ ok: false, reason: "not_found" });
    expect(
      await declineInvitation(
        db,
        memberContext(stranger.orgId, stranger.user, "owner"),
        invitationId,
      ),
    ).toEqual({
      ok: false,
      reason: "not_found",
    });
    expect(await listMembershipsOfUser({ db, userId: stranger.user.id })).toHaveLength(1);
    expect(await db.select().from(invitations).where(eq(invitations.orgId, a.orgId))).toHaveLength(
      1,
    );
  });

  it("declining deletes the invitation, joins nothing and is audited in the inviting organisation", async () => {
    const db = await getDb();
    const { a, b, invitationId, sessionToken } = await invitedOwnerOfB();
    expect(
      await declineInvitation(db, memberContext(b.orgId, b.user, "owner"), invitationId),
    ).toEqual({ ok: true });
    expect(await listMembershipsOfUser({ db, userId: b.user.id })).toHaveLength(1);
    expect(await sessionOrg(sessionToken)).toBe(b.orgId);
    expect(await db.select().from(invitations).where(eq(invitations.orgId, a.orgId))).toHaveLength(
      0,
    );
    expect(await eventsIn(a.orgId)).toContainEqual({
      action: "invitation.declined",
      outcome: "success",
      actorId: b.user.id,
    });
  });
});

describe("the session's organisation", () => {
  it("starts in the person's oldest organisation and falls back to it when the choice is stale", async () => {
    const db = await getDb();
    const { a, b, invitationId, sessionToken } = await invitedOwnerOfB("admin");
    await acceptInvitation(
      db,
      { ctx: memberContext(b.orgId, b.user, "owner"), sessionToken },
      invitationId,
    );
    expect(await createSession(b.user.id).then(sessionOrg)).toBe(b.orgId);

    expect(
      await getActiveMembership({ db, userId: b.user.id, preferredOrgId: a.orgId }),
    ).toMatchObject({ orgId: a.orgId, role: "admin" });
    const foreign = await createOwner("foreign");
    expect(
      await getActiveMembership({ db, userId: b.user.id, preferredOrgId: foreign.orgId }),
    ).toMatchObject({ orgId: b.orgId, role: "owner" });
    expect(
      await getActiveMembership({ db, userId: b.user.id, preferredOrgId: null }),
    ).toMatchObject({ orgId: b.orgId });
  });

  it("switching changes only this session, and is audited in the organisation switched to", async () => {
    const db = await getDb();
    const { a, b, invitationId, sessionToken } = await invitedOwnerOfB("sender");
    await acceptInvitation(
      db,
      { ctx: memberContext(b.orgId, b.user, "owner"), sessionToken },
      invitationId,
    );
    const otherSession = await createSession(b.user.id);

    const result = await switchOrganization(
      db,
      { ctx: memberContext(a.orgId, b.user, "owner"), sessionToken },
      b.orgId,
    );
    expect(result).toEqual({ ok: true, orgName: expect.any(String) });
    expect(await sessionOrg(sessionToken)).toBe(b.orgId);
    expect(await sessionOrg(otherSession)).toBe(b.orgId);
    await switchOrganization(
      db,
      { ctx: memberContext(b.orgId, b.user, "owner"), sessionToken: otherSession },
      a.orgId,
    );
    expect(await sessionOrg(otherSession)).toBe(a.orgId);
    expect(await sessionOrg(sessionToken)).toBe(b.orgId);
    expect(await eventsIn(b.orgId)).toContainEqual({
      action: "org.switched",
      outcome: "success",
      actorId: b.user.id,
    });
  });

  it("refuses a switch to an organisation the person is not in, without touching its log", async () => {
    const db = await getDb();
    const me = await createOwner("me");
    const sessionToken = await createSession(me.user.id);
    const victim = await createOwner("victim");
    const before = await eventsIn(victim.orgId);

    const result = await switchOrganization(
      db,
      { ctx: memberContext(me.orgId, me.user, "owner"), sessionToken },
      victim.orgId,
    );
    expect(result).toEqual({ ok: false });
    expect(await sessionOrg(sessionToken)).toBe(me.orgId);
    expect(await eventsIn(victim.orgId)).toEqual(before);
    expect(await eventsIn(me.orgId)).toContainEqual({
      action: "org.switched",
      outcome: "denied",
      actorId: me.user.id,
    });
  });

  it("cannot point someone else's session at an organisation", async () => {
    const db = await getDb();
    const { a, b, invitationId, sessionToken } = await invitedOwnerOfB("sender");
    await acceptInvitation(
      db,
      { ctx: memberContext(b.orgId, b.user, "owner"), sessionToken },
      invitationId,
    );
    const bSession = await createSession(b.user.id);
    // A is a member of A and tries to move B's session there.
    const result = await switchOrganization(
      db,
      { ctx: memberContext(a.orgId, a.user, "owner"), sessionToken: bSession },
      a.orgId,
    );
    expect(result).toEqual({ ok: false });
    expect(await sessionOrg(bSession)).toBe(b.orgId);
  });
});
