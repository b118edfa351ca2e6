import "server-only";
import type { Database } from "@/db";
import {
  findMembership,
  insertMembership,
  takeInvitationForEmail,
} from "@/db/queries/organizations";
import { setSessionActiveOrg } from "@/db/queries/sessions";
import { getUserEmail } from "@/db/queries/users";
import type { Role } from "@/db/schema";
import type { Actor } from "@/lib/audit/events";
import { writeAuditEvent } from "@/lib/audit/write";
import { queueNotification } from "@/lib/notifications";
import type { MemberContext } from "./context";

/** The caller and the session it acts in: joining or switching changes that session's organisation. */
type InSession<C = MemberContext> = { ctx: C; sessionToken: string };

/** Answering an invitation concerns the inviting organisation, whatever the caller's own is. */
type Invitee = Pick<MemberContext, "actor" | "request">;

export type InvitationAnswer =
  | { ok: true; orgId: string; orgName: string; role: Role }
  | { ok: false; reason: "not_found" | "unverified" };

/**
 * The address an invitation may be answered from: only one the sign-in provider confirmed, so
 * that an account whose provider lets anyone claim any address (nOAuth) cannot take it.
 */
async function verifiedEmail(db: Database, userId: string) {
  const user = await getUserEmail({ db, userId });
  return user?.email && user.emailVerified ? user.email : null;
}

function actorOf(userId: string, email: string): Actor {
  return { type: "user", id: userId, label: email };
}

/**
 * Accepting joins the inviting organisation with the invited role, audited there, and makes it
 * the session's organisation. An existing membership keeps its role.
 */
export async function acceptInvitation(
  db: Database,
  { ctx, sessionToken }: InSession<Invitee>,
  invitationId: string,
): Promise<InvitationAnswer> {
  const { request } = ctx;
  const userId = ctx.actor.id;
  const email = await verifiedEmail(db, userId);
  if (!email) return { ok: false, reason: "unverified" };
  return db.transaction(async (tx) => {
    const invite = await takeInvitationForEmail({ db: tx, id: invitationId, email });
    if (!invite) return { ok: false, reason: "not_found" } as const;
    const existing = await findMembership({ db: tx, orgId: invite.orgId, userId });
    if (!existing) {
      await insertMembership({ db: tx, orgId: invite.orgId, userId, role: invite.role });
      await queueNotification(tx, {
        orgId: invite.orgId,
        kind: "member_added",
        title: `New member: ${email}`,
        body: `${email} accepted an invitation and joined the organisation as ${invite.role}.`,
      });
    }
    await setSessionActiveOrg({ db: tx, sessionToken, userId, orgId: invite.orgId });
    await writeAuditEvent(tx, {
      orgId: invite.orgId,
      actor: actorOf(userId, email),
      action: "invitation.accepted",
      target: { type: "invitation", id: invitationId },
      outcome: "success",
      request,
      metadata: { role: existing?.role ?? invite.role, wasMember: Boolean(existing) },
    });
    const joined = await findMembership({ db: tx, orgId: invite.orgId, userId });
    if (!joined) throw new Error("membership missing after accepting an invitation");
    return { ok: true, orgId: invite.orgId, orgName: joined.orgName, role: joined.role } as const;
  });
}

/** Declining deletes the invitation; the inviting organisation's log says so. */
export async function declineInvitation(
  db: Database,
  ctx: Invitee,
  invitationId: string,
): Promise<{ ok: true } | { ok: false; reason: "not_found" | "unverified" }> {
  const { request } = ctx;
  const userId = ctx.actor.id;
  const email = await verifiedEmail(db, userId);
  if (!email) return { ok: false, reason: "unverified" };
  return db.transaction(async (tx) => {
    const invite = await takeInvitationForEmail({ db: tx, id: invitationId, email });
    if (!invite) return { ok: false, reason: "not_found" } as const;
    await writeAuditEvent(tx, {
      orgId: invite.orgId,
      actor: actorOf(userId, email),
      action: "invitation.declined",
      target: { type: "invitation", id: invitationId },
      outcome: "success",
      request,
      metadata: { role: invite.role },
    });
    return { ok: true } as const;
  });
}

/** Makes another of the person's organisations the session's one; audited in that organisation. */
export async function switchOrganization(
  db: Database,
  { ctx, sessionToken }: InSession,
  orgId: string,
): Promise<{ ok: true; orgName: string } | { ok: false }> {
  const { request, actor } = ctx;
  const userId = actor.id;
  const fromOrgId = ctx.orgId;
  return db.transaction(async (tx) => {
    const membership = await findMembership({ db: tx, orgId, userId });
    if (!membership) {
      // Logged where the person is, not in the organisation they named: a stranger must not be
      // able to write into another organisation's log.
      await writeAuditEvent(tx, {
        orgId: fromOrgId,
        actor,
        action: "org.switched",
        target: { type: "organization", id: orgId },
        outcome: "denied",
        request,
        metadata: { from: fromOrgId },
      });
      return { ok: false } as const;
    }
    const isSet = await setSessionActiveOrg({ db: tx, sessionToken, userId, orgId });
    if (!isSet) return { ok: false } as const;
    await writeAuditEvent(tx, {
      orgId,
      actor,
      action: "org.switched",
      target: { type: "organization", id: orgId },
      outcome: "success",
      request,
      metadata: { from: fromOrgId, role: membership.role },
    });
    return { ok: true, orgName: membership.orgName } as const;
  });
}
