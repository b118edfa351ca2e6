import "server-only";
import type { Database, DbOrTx, Tx } from "@/db";
import { revokeApiKeysCreatedBy } from "@/db/queries/api-keys";
import {
  countMemberships,
  deleteInvitation,
  deleteMembership,
  findInvitation,
  findMemberByEmail,
  insertMembership,
  insertOrganization,
  listInvitations,
  lockMemberships,
  updateMemberRole,
  upsertInvitation,
} from "@/db/queries/organizations";
import { recordEmailVerification } from "@/db/queries/users";
import type { Role } from "@/db/schema";
import type { Actor, AuditAction } from "@/lib/audit/events";
import { writeAuditEvent } from "@/lib/audit/write";
import { UserFacingError } from "@/lib/errors";
import { queueNotification } from "@/lib/notifications";
import { enforceRateLimit } from "@/lib/ratelimit/runtime";
import type { CallContext } from "./context";
import {
  REFUSAL_MESSAGES,
  type Refusal,
  refuseInvitation,
  refuseRemoval,
  refuseRoleChange,
} from "./owner-rules";

export class LastOwnerError extends UserFacingError {
  constructor() {
    super(REFUSAL_MESSAGES.last_owner);
    this.name = "LastOwnerError";
  }
}

export class NotAMemberError extends UserFacingError {
  constructor() {
    super("That person is not a member of this organisation.");
    this.name = "NotAMemberError";
  }
}

/** A change the owner rules refuse; audited as denied, unlike the last-owner guard. */
export class MemberRuleError extends UserFacingError {
  constructor(
    readonly reason: Exclude<Refusal, "last_owner">,
    options: { field?: string; fieldMessage?: string } = {},
  ) {
    super(REFUSAL_MESSAGES[reason], options);
    this.name = "MemberRuleError";
  }
}

// An invitation refused for its role says so beside the role field of the form.
const ROLE_FIELD = { field: "role", fieldMessage: "Not a role you can give." };

function refusalError(reason: Refusal, options: { field?: string; fieldMessage?: string } = {}) {
  return reason === "last_owner" ? new LastOwnerError() : new MemberRuleError(reason, options);
}

type SignedInUser = { id: string; email?: string | null; name?: string | null };

/**
 * Whether a sign-in confirms the account's own address: the provider vouches for the address it
 * names (`email_verified`, or the demo provider) and that address is the account's. A provider
 * account linked to an existing account names its own address, which says nothing about the
 * account's: an unverified Microsoft `email` claim for someone else's address, then a linked
 * Gmail, would otherwise mark that address confirmed and open its invitations.
 */
export function confirmsAccountAddress(
  accountEmail: string | null | undefined,
  provider: string | undefined,
  profile: { email?: unknown; email_verified?: unknown } | null | undefined,
): boolean {
  const named = typeof profile?.email === "string" ? profile.email.trim().toLowerCase() : null;
  const vouched = provider === "demo" || profile?.email_verified === true;
  return vouched && named !== null && named === (accountEmail ?? "").trim().toLowerCase();
}

/**
 * Runs on every sign-in: records whether the provider confirmed the address, and gives a person
 * with no organisation at all one of their own. Invitations are left waiting for the person's
 * click on the invitations page.
 */
export async function settleMemberships(
  db: Database,
  user: SignedInUser,
  { isEmailVerified }: { isEmailVerified: boolean },
) {
  await db.transaction(async (tx) => {
    await recordEmailVerification({ db: tx, userId: user.id, isVerified: isEmailVerified });
    if ((await countMemberships({ db: tx, userId: user.id })) > 0) return;
    const name = user.name || user.email?.split("@")[1] || "My organisation";
    const org = await insertOrganization({ db: tx, name });
    await insertMembership({ db: tx, orgId: org.id, userId: user.id, role: "owner" });
    await writeAuditEvent(tx, {
      orgId: org.id,
      actor: { type: "user", id: user.id, label: user.email },
      action: "org.created",
      target: { type: "organization", id: org.id },
      outcome: "success",
      metadata: { role: "owner" },
    });
  });
}

type Refused = {
  action: AuditAction;
  target: { type: string; id: string | null };
  metadata: Record<string, unknown>;
};

/** Runs a member change; a refusal by the owner rules leaves a denied event behind. */
async function auditingRefusal<T>(
  db: Database,
  { orgId, actor, request }: CallContext,
  refused: Refused,
  work: () => Promise<T>,
): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (error instanceof MemberRuleError) {
      await writeAuditEvent(db, {
        orgId,
        actor,
        action: refused.action,
        target: refused.target,
        outcome: "denied",
        request,
        metadata: { ...refused.metadata, reason: error.reason },
      });
    }
    throw error;
  }
}

/**
 * Locks the organisation's membership rows and returns what the owner rules need: the acting
 * person's role as of now (they may have been demoted since their page loaded) and the owners.
 */
async function lockedFacts(tx: Tx, orgId: string, actor: Actor) {
  const rows = await lockMemberships({ db: tx, orgId });
  const actorRow = actor.type === "user" ? rows.find((r) => r.userId === actor.id) : undefined;
  if (!actorRow) throw new MemberRuleError("not_allowed");
  return {
    rows,
    actorRole: actorRow.role,
    ownerCount: rows.filter((r) => r.role === "owner").length,
  };
}

export async function inviteMember(
  db: Database,
  ctx: CallContext,
  { email, role }: { email: string; role: Role },
) {
  const { orgId, actor, request } = ctx;
  await enforceRateLimit("consoleCreate", [`user:${actor.id}`, `org:${orgId}`]);
  // A refused invitation has no row: the address is named only in `email`, which the writer
  // keeps in the event's erasable `personal` fields (a target id is chained, never erased).
  const refused = {
    action: "member.invited" as const,
    target: { type: "invitation", id: null },
    metadata: { email: email.toLowerCase(), role },
  };
  return auditingRefusal(db, ctx, refused, () =>
    db.transaction(async (tx) => {
      const { actorRole } = await lockedFacts(tx, orgId, actor);
      // Re-inviting replaces the waiting invitation's role: an owner's invitation to be an
      // owner is changed, like the owner role itself, only by an owner.
      const waiting = await findInvitation({ db: tx, orgId, email });
      const refusal =
        refuseInvitation({ actorRole, role }) ??
        (waiting ? refuseInvitation({ actorRole, role: waiting.role }) : null);
      if (refusal) throw refusalError(refusal, ROLE_FIELD);
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
        target: { type: "invitation", id: invite?.id ?? null },
        outcome: "success",
        request,
        metadata: {
          email: email.toLowerCase(),
          role,
          ...(waiting ? { previousRole: waiting.role } : {}),
        },
      });
      return { alreadyMember: false as const };
    }),
  );
}

export async function revokeInvitation(db: Database, ctx: CallContext, id: string) {
  const { orgId, actor, request } = ctx;
  const refused = {
    action: "invitation.revoked" as const,
    target: { type: "invitation", id },
    metadata: {},
  };
  return auditingRefusal(db, ctx, refused, () =>
    db.transaction(async (tx) => {
      const { actorRole } = await lockedFacts(tx, orgId, actor);
      const waiting = await findInvitation({ db: tx, orgId, id });
      const refusal = waiting ? refuseInvitation({ actorRole, role: waiting.role }) : null;
      if (refusal) throw refusalError(refusal);
      const removed = await deleteInvitation({ db: tx, orgId, id });
      if (!removed) return false;
      await writeAuditEvent(tx, {
        orgId,
        actor,
        action: "invitation.revoked",
        target: { type: "invitation", id },
        outcome: "success",
        request,
        metadata: { email: removed.email },
      });
      return true;
    }),
  );
}

export async function changeMemberRole(
  db: Database,
  ctx: CallContext,
  { userId, role }: { userId: string; role: Role },
) {
  const { orgId, actor, request } = ctx;
  const refused = {
    action: "member.role_changed" as const,
    target: { type: "user", id: userId },
    metadata: { to: role },
  };
  await auditingRefusal(db, ctx, refused, () =>
    db.transaction(async (tx) => {
      const { rows, actorRole, ownerCount } = await lockedFacts(tx, orgId, actor);
      const target = rows.find((r) => r.userId === userId);
      if (!target) throw new NotAMemberError();
      const refusal = refuseRoleChange({
        actorRole,
        targetRole: target.role,
        newRole: role,
        isSelf: userId === actor.id,
        ownerCount,
      });
      if (refusal) throw refusalError(refusal);
      if (target.role === role) return;
      await updateMemberRole({ db: tx, orgId, userId, role });
      // What they sent and may no longer send is withdrawn, as if they sent it now.
      const invitationsWithdrawn = await withdrawInvitations(tx, ctx, {
        invitedBy: userId,
        role,
        reason: "inviter_role_changed",
      });
      await writeAuditEvent(tx, {
        orgId,
        actor,
        action: "member.role_changed",
        target: { type: "user", id: userId },
        outcome: "success",
        request,
        metadata: { from: target.role, to: role, invitationsWithdrawn },
      });
      await queueNotification(tx, {
        orgId,
        kind: "member_role_changed",
        title: `A member's role changed to ${role}`,
        body: `${actor.label ?? "An administrator"} changed a member's role from ${target.role} to ${role}. The Members page shows who.`,
      });
    }),
  );
}

/**
 * Withdraws waiting invitations, each audited as `invitation.revoked` with the reason: all of
 * the organisation's, or those `invitedBy` sent that `role` could not send (null: all of
 * theirs). An invitation outlives its sender otherwise: a removed or demoted admin, or whoever
 * held their session, could invite another address of theirs and come back by accepting it.
 */
export async function withdrawInvitations(
  tx: DbOrTx,
  ctx: CallContext,
  { invitedBy, role = null, reason }: { invitedBy?: string; role?: Role | null; reason: string },
): Promise<number> {
  const { orgId, actor, request } = ctx;
  const sent = await listInvitations({ db: tx, orgId, invitedBy });
  let withdrawn = 0;
  for (const invitation of sent) {
    if (role !== null && refuseInvitation({ actorRole: role, role: invitation.role }) === null) {
      continue;
    }
    if (!(await deleteInvitation({ db: tx, orgId, id: invitation.id }))) continue;
    withdrawn++;
    await writeAuditEvent(tx, {
      orgId,
      actor,
      action: "invitation.revoked",
      target: { type: "invitation", id: invitation.id },
      outcome: "success",
      request,
      metadata: { email: invitation.email, reason },
    });
  }
  return withdrawn;
}

/** Removes a member; owners and admins may also remove themselves, except the last owner. */
export async function removeMember(db: Database, ctx: CallContext, userId: string) {
  const { orgId, actor, request } = ctx;
  const refused = {
    action: "member.removed" as const,
    target: { type: "user", id: userId },
    metadata: {},
  };
  await auditingRefusal(db, ctx, refused, () =>
    db.transaction(async (tx) => {
      const { rows, actorRole, ownerCount } = await lockedFacts(tx, orgId, actor);
      const target = rows.find((r) => r.userId === userId);
      if (!target) throw new NotAMemberError();
      const refusal = refuseRemoval({
        actorRole,
        targetRole: target.role,
        isSelf: userId === actor.id,
        ownerCount,
      });
      if (refusal) throw refusalError(refusal);
      await deleteMembership({ db: tx, orgId, userId });
      // Their keys leave with them: they saw each secret once and could send with it forever.
      const keys = await revokeApiKeysCreatedBy({ db: tx, orgId, userId, now: new Date() });
      for (const key of keys) {
        await writeAuditEvent(tx, {
          orgId,
          actor,
          action: "api_key.revoked",
          target: { type: "api_key", id: key.id },
          outcome: "success",
          request,
          metadata: { name: key.name, prefix: key.prefix, reason: "creator_removed" },
        });
      }
      const invitationsWithdrawn = await withdrawInvitations(tx, ctx, {
        invitedBy: userId,
        reason: "inviter_removed",
      });
      await writeAuditEvent(tx, {
        orgId,
        actor,
        action: "member.removed",
        target: { type: "user", id: userId },
        outcome: "success",
        request,
        metadata: { role: target.role, apiKeysRevoked: keys.length, invitationsWithdrawn },
      });
    }),
  );
}
