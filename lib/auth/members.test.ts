import { and, eq } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { POST } from "@/app/api/v1/messages/route";
import { getDb } from "@/db";
import { getActiveMembership, listMembers } from "@/db/queries/organizations";
import { auditEvents, invitations } from "@/db/schema";
import { makeApiKey, sendRequest } from "@/lib/mail/testing";
import { auditEventsOf } from "@/lib/testing/audit";
import { memberContext } from "@/lib/testing/context";
import { createOwner, createUser, joinOrganization } from "@/lib/testing/factories";
import {
  changeMemberRole,
  confirmsAccountAddress,
  inviteMember,
  LastOwnerError,
  removeMember,
  revokeInvitation,
  settleMemberships,
} from "./members";

// The owner rules read the acting person's role from the locked rows, not from the context.
const ctxOf = (orgId: string, id: string) => memberContext(orgId, { id }, "owner");

async function actions(orgId: string) {
  return (await auditEventsOf(orgId)).map((r) => r.action);
}

describe("memberships", () => {
  it("makes the first sign-in the owner of a new organisation, with an audit event", async () => {
    const { user, orgId } = await createOwner();
    const db = await getDb();
    expect(await getActiveMembership({ db, userId: user.id })).toMatchObject({
      orgId,
      role: "owner",
    });
    expect(await actions(orgId)).toContain("org.created");
  });

  it("leaves invitations waiting at sign-in: an invited person joins nothing by signing in", async () => {
    const db = await getDb();
    const { user: owner, orgId } = await createOwner();
    const invitee = await createUser("sender");
    await inviteMember(db, ctxOf(orgId, owner.id), { email: invitee.email ?? "", role: "sender" });

    await settleMemberships(db, invitee, { isEmailVerified: true });
    await settleMemberships(db, invitee, { isEmailVerified: true });

    const own = await getActiveMembership({ db, userId: invitee.id });
    expect(own?.orgId).not.toBe(orgId);
    expect(own?.role).toBe("owner");
    expect((await listMembers({ db, orgId })).rows.map((m) => m.userId)).toEqual([owner.id]);
    expect(await db.select().from(invitations).where(eq(invitations.orgId, orgId))).toHaveLength(1);
    expect(await actions(orgId)).not.toContain("member.joined");
  });

  it("refuses to demote or remove the last owner and writes no event for the refusal", async () => {
    const db = await getDb();
    const { user, orgId } = await createOwner();
    const ctx = ctxOf(orgId, user.id);
    const before = (await actions(orgId)).length;
    await expect(changeMemberRole(db, ctx, { userId: user.id, role: "admin" })).rejects.toThrow(
      LastOwnerError,
    );
    await expect(removeMember(db, ctx, user.id)).rejects.toThrow(LastOwnerError);
    expect(await actions(orgId)).toHaveLength(before);
    expect((await getActiveMembership({ db, userId: user.id }))?.role).toBe("owner");
  });

  it("keeps one owner when two owners demote each other at the same moment", async () => {
    const db = await getDb();
    const { user: a, orgId } = await createOwner();
    const b = await createUser("second-owner");
    await joinOrganization({ orgId, inviterId: a.id, user: b, role: "owner" });

    const results = await Promise.allSettled([
      changeMemberRole(db, ctxOf(orgId, a.id), { userId: b.id, role: "sender" }),
      changeMemberRole(db, ctxOf(orgId, b.id), { userId: a.id, role: "sender" }),
    ]);
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
    const owners = (await listMembers({ db, orgId })).rows.filter((m) => m.role === "owner");
    expect(owners).toHaveLength(1);
  });

  it("a removed member's API keys are revoked with them: the route refuses them", async () => {
    const db = await getDb();
    const { user: owner, orgId } = await createOwner();
    const member = await createUser("leaver");
    await joinOrganization({ orgId, inviterId: owner.id, user: member, role: "admin" });
    const { token, key } = await makeApiKey({ user: member, orgId });
    const ownersKey = await makeApiKey({ user: owner, orgId });
    const probe = async (bearer: string) =>
      (
        await POST(
          sendRequest({ mailbox: "x", to: ["a@example.test"], text: "hi" }, { token: bearer }),
        )
      ).status;
    expect(await probe(token)).not.toBe(401);

    await removeMember(db, ctxOf(orgId, owner.id), member.id);
    expect(await probe(token)).toBe(401);
    expect(await probe(ownersKey.token)).not.toBe(401);
    const [revoked] = await auditEventsOf(orgId, { action: "api_key.revoked", targetId: key.id });
    expect(revoked?.metadata).toMatchObject({ reason: "creator_removed" });
    const [removed] = await auditEventsOf(orgId, { action: "member.removed", targetId: member.id });
    expect(removed?.metadata).toMatchObject({ apiKeysRevoked: 1 });
  });

  it("an admin can neither downgrade nor withdraw an owner's invitation to be an owner", async () => {
    const db = await getDb();
    const { user: owner, orgId } = await createOwner();
    const admin = await createUser("admin");
    await joinOrganization({ orgId, inviterId: owner.id, user: admin, role: "admin" });
    const asAdmin = memberContext(orgId, admin, "admin");
    const invitee = `future-owner-${Date.now()}@example.test`;
    await inviteMember(db, ctxOf(orgId, owner.id), { email: invitee, role: "owner" });
    await expect(inviteMember(db, asAdmin, { email: invitee, role: "sender" })).rejects.toThrow(
      /Only an owner/,
    );
    const [waiting] = await db.select().from(invitations).where(eq(invitations.email, invitee));
    expect(waiting).toMatchObject({ role: "owner", invitedBy: owner.id });
    await expect(revokeInvitation(db, asAdmin, waiting?.id ?? "")).rejects.toThrow(/Only an owner/);
    expect(await db.select().from(invitations).where(eq(invitations.email, invitee))).toHaveLength(
      1,
    );
    const refusals = await auditEventsOf(orgId, { action: "invitation.revoked" });
    expect(refusals.map((e) => e.outcome)).toEqual(["denied"]);

    // An admin re-inviting a sender as compliance is recorded with the role it replaced.
    const other = `someone-${Date.now()}@example.test`;
    await inviteMember(db, asAdmin, { email: other, role: "sender" });
    await inviteMember(db, asAdmin, { email: other, role: "compliance" });
    const invited = await auditEventsOf(orgId, { action: "member.invited" });
    expect(invited.at(-1)?.metadata).toMatchObject({ role: "compliance", previousRole: "sender" });
  });

  it("a removed or demoted member's waiting invitations are withdrawn: they cannot come back by them", async () => {
    const db = await getDb();
    const { user: owner, orgId } = await createOwner();
    const admin = await createUser("inviter");
    const coOwner = await createUser("co-owner");
    await joinOrganization({ orgId, inviterId: owner.id, user: admin, role: "admin" });
    await joinOrganization({ orgId, inviterId: owner.id, user: coOwner, role: "owner" });
    const stamp = Date.now();
    const waiting = async (email: string) =>
      db.select({ id: invitations.id }).from(invitations).where(eq(invitations.email, email));
    // The admin invites another address of theirs as admin, then is removed.
    const comeback = `comeback-${stamp}@example.test`;
    await inviteMember(db, memberContext(orgId, admin, "admin"), {
      email: comeback,
      role: "admin",
    });
    await removeMember(db, ctxOf(orgId, owner.id), admin.id);
    expect(await waiting(comeback)).toEqual([]);
    const [withdrawn] = await auditEventsOf(orgId, { action: "invitation.revoked" });
    expect(withdrawn?.metadata).toMatchObject({ reason: "inviter_removed" });
    const [removed] = await auditEventsOf(orgId, { action: "member.removed", targetId: admin.id });
    expect(removed?.metadata).toMatchObject({ invitationsWithdrawn: 1 });

    // An owner demoted to admin keeps the invitations an admin may send, not the owner one.
    const asOwner = `as-owner-${stamp}@example.test`;
    const asSender = `as-sender-${stamp}@example.test`;
    await inviteMember(db, ctxOf(orgId, coOwner.id), { email: asOwner, role: "owner" });
    await inviteMember(db, ctxOf(orgId, coOwner.id), { email: asSender, role: "sender" });
    await changeMemberRole(db, ctxOf(orgId, owner.id), { userId: coOwner.id, role: "admin" });
    expect(await waiting(asOwner)).toEqual([]);
    expect(await waiting(asSender)).toHaveLength(1);
    // Demoted to a role that invites nobody: the rest goes too.
    await changeMemberRole(db, ctxOf(orgId, owner.id), { userId: coOwner.id, role: "sender" });
    expect(await waiting(asSender)).toEqual([]);
    const reasons = (await auditEventsOf(orgId, { action: "invitation.revoked" })).map(
      (e) => (e.metadata as { reason?: string }).reason,
    );
    expect(reasons).toEqual(["inviter_removed", "inviter_role_changed", "inviter_role_changed"]);
  });

  it("changes roles and removes members with one audit event each", async () => {
    const db = await getDb();
    const { user: owner, orgId } = await createOwner();
    const member = await createUser("member");
    await joinOrganization({ orgId, inviterId: owner.id, user: member, role: "sender" });
    await changeMemberRole(db, ctxOf(orgId, owner.id), { userId: member.id, role: "compliance" });
    await removeMember(db, ctxOf(orgId, owner.id), member.id);
    const rows = await db
      .select({ action: auditEvents.action, metadata: auditEvents.metadata })
      .from(auditEvents)
      .where(and(eq(auditEvents.orgId, orgId), eq(auditEvents.targetId, member.id)));
    expect(rows.map((r) => r.action)).toEqual(
      expect.arrayContaining(["member.role_changed", "member.removed"]),
    );
    expect(rows.find((r) => r.action === "member.role_changed")?.metadata).toEqual({
      from: "sender",
      to: "compliance",
      invitationsWithdrawn: 0,
    });
  });
});

describe("a sign-in confirms the account's address", () => {
  it("only when the provider vouches for the very address the account has", () => {
    const verified = { email: "Ana@Example.test", email_verified: true };
    expect(confirmsAccountAddress("ana@example.test", "google", verified)).toBe(true);
    expect(confirmsAccountAddress("ana@example.test", "demo", { email: "ana@example.test" })).toBe(
      true,
    );
    // A Gmail linked to an account created with someone else's unverified address.
    expect(
      confirmsAccountAddress("victim@corp.test", "google", {
        email: "attacker@gmail.test",
        email_verified: true,
      }),
    ).toBe(false);
    // Microsoft's `email` claim is not verified; neither is a missing or false claim.
    expect(
      confirmsAccountAddress("ana@example.test", "microsoft", { email: "ana@example.test" }),
    ).toBe(false);
    expect(
      confirmsAccountAddress("ana@example.test", "google", {
        email: "ana@example.test",
        email_verified: false,
      }),
    ).toBe(false);
    expect(confirmsAccountAddress(null, "google", verified)).toBe(false);
    expect(confirmsAccountAddress("ana@example.test", "google", undefined)).toBe(false);
  });
});
