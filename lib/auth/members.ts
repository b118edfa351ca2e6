import "server-only";
import type { Database, Tx } from "@/db";
import {
  countMemberships,
  deleteInvitation,
  deleteMembership,
  findMemberByEmail,
  insertMembership,
  insertOrganization,
  lockMemberships,
  takeInvitationsForEmail,
  updateMemberRole,
  upsertInvitation,
} from "@/db/queries/organizations";
import type { Role } from "@/db/schema";
import type { Actor } from "@/lib/audit/events";
import { writeAuditEvent } from "@/lib/audit/write";

export class LastOwnerError extends Error {
  constructor() {
    super("An organisation needs at least one owner: make someone else owner first.");
    this.name = "LastOwnerError";
  }
}

export class NotAMemberError extends Error {
  constructor() {
    super("That person is not a member of this organisation.");
    this.name = "NotAMemberError";
  }
}

type SignedInUser = { id: string; email?: string | null; name?: string | null };

/**
 * Runs on every sign-in: pending invitations for a verified email become memberships; a person
 * with no organisation at all gets a new one and owns it.
 */
export async function settleMemberships(
  db: Database,
  user: SignedInUser,
  { isEmailVerified }: { isEmailVerified: boolean },
) {
  await db.transaction(async (tx) => {
    const actor: Actor = { type: "user", id: user.id, label: user.email };
    if (user.email && isEmailVerified) {
      for (const invite of await takeInvitationsForEmail({ db: tx, email: user.email })) {
        await insertMembership({ db: tx, orgId: invite.orgId, userId: user.id, role: invite.role });
        await writeAuditEvent(tx, {
          orgId: invite.orgId,
          actor,
          action: "member.joined",
          target: { type: "user", id: user.id },
          outcome: "success",
          metadata: { role: invite.role },
        });
      }
    }
    if ((await countMemberships({ db: tx, userId: user.id })) > 0) return;
    const name = user.name || user.email?.split("@")[1] || "My organisation";
    const org = await insertOrganization({ db: tx, name });
    await insertMembership({ db: tx, orgId: org.id, userId: user.id, role: "owner" });
    await writeAuditEvent(tx, {
      orgId: org.id,
      actor,
      action: "org.created",
      target: { type: "organization", id: org.id },
      outcome: "success",
      metadata: { role: "owner" },
    });
  });
}

type OrgActor = { orgId: string; actor: Actor };

export async function inviteMember(
  db: Database,
  { orgId, actor }: OrgActor,
  { email, role }: { email: string; role: Role },
) {
  return db.transaction(async (tx) => {
    const existing = await findMemberByEmail({ db: tx, orgId, email });
    if (existing) return { alreadyMember: true as const };
    const invite = await upsertInvitation({
      db: tx,
      orgId,
      email,
      role,
      invitedBy: actor.id ?? "",
    });
    await writeAuditEvent(tx, {
      orgId,
      actor,
      action: "member.invited",
      target: { type: "invitation", id: invite?.id ?? email },
      outcome: "success",
      metadata: { email: email.toLowerCase(), role },
    });
    return { alreadyMember: false as const };
  });
}

export async function revokeInvitation(db: Database, { orgId, actor }: OrgActor, id: string) {
  return db.transaction(async (tx) => {
    const removed = await deleteInvitation({ db: tx, orgId, id });
    if (!removed) return false;
    await writeAuditEvent(tx, {
      orgId,
      actor,
      action: "invitation.revoked",
      target: { type: "invitation", id },
      outcome: "success",
      metadata: { email: removed.email },
    });
    return true;
  });
}

async function guardOwners(tx: Tx, orgId: string, userId: string, nextRole: Role | null) {
  const rows = await lockMemberships({ db: tx, orgId });
  const target = rows.find((r) => r.userId === userId);
  if (!target) throw new NotAMemberError();
  const owners = rows.filter((r) => r.role === "owner").length;
  if (target.role === "owner" && nextRole !== "owner" && owners <= 1) throw new LastOwnerError();
  return target;
}

export async function changeMemberRole(
  db: Database,
  { orgId, actor }: OrgActor,
  { userId, role }: { userId: string; role: Role },
) {
  await db.transaction(async (tx) => {
    const target = await guardOwners(tx, orgId, userId, role);
    await updateMemberRole({ db: tx, orgId, userId, role });
    await writeAuditEvent(tx, {
      orgId,
      actor,
      action: "member.role_changed",
      target: { type: "user", id: userId },
      outcome: "success",
      metadata: { from: target.role, to: role },
    });
  });
}

export async function removeMember(db: Database, { orgId, actor }: OrgActor, userId: string) {
  await db.transaction(async (tx) => {
    const target = await guardOwners(tx, orgId, userId, null);
    await deleteMembership({ db: tx, orgId, userId });
    await writeAuditEvent(tx, {
      orgId,
      actor,
      action: "member.removed",
      target: { type: "user", id: userId },
      outcome: "success",
      metadata: { role: target.role },
    });
  });
}
