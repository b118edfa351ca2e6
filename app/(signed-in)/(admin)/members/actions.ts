"use server";

import { revalidatePath } from "next/cache";
import { redirect } from "next/navigation";
import { z } from "zod";
import { getDb } from "@/db";
import { type ActionResult, action } from "@/lib/auth/action";
import { changeMemberRole, inviteMember, removeMember, revokeInvitation } from "@/lib/auth/members";
import { ROLES } from "@/lib/auth/roles";

const role = z.enum(ROLES, { error: "Choose one of owner, admin, sender or compliance officer." });

export const addMemberAction = action(
  {
    permission: "manageMembers",
    name: "members.add",
    schema: z.object({
      email: z.email({ error: "Enter one email address, like name@example.com." }).max(320),
      role,
    }),
  },
  async ({ email, role }, ctx): Promise<ActionResult> => {
    const result = await inviteMember(await getDb(), ctx, { email, role });
    revalidatePath("/members");
    return result.alreadyMember
      ? { message: `${email} is already a member.`, fieldErrors: { email: ["Already a member."] } }
      : {
          ok: true,
          message: `${email} is invited as ${role}: they join when they accept the invitation.`,
        };
  },
);

export const changeRoleAction = action(
  {
    permission: "manageMembers",
    name: "members.change_role",
    schema: z.object({ userId: z.string().min(1).max(64), role }),
  },
  async ({ userId, role }, ctx) => {
    await changeMemberRole(await getDb(), ctx, { userId, role });
    revalidatePath("/members");
    return { ok: true, message: "Role changed." };
  },
);

export const removeMemberAction = action(
  {
    permission: "manageMembers",
    name: "members.remove",
    schema: z.object({ userId: z.string().min(1).max(64) }),
  },
  async ({ userId }, ctx) => {
    await removeMember(await getDb(), ctx, userId);
    revalidatePath("/", "layout");
    // Someone who left works in another of their organisations from now on.
    if (userId === ctx.user.id) redirect("/");
    return { ok: true, message: "Member removed." };
  },
);

export const revokeInvitationAction = action(
  {
    permission: "manageMembers",
    name: "members.revoke_invitation",
    schema: z.object({ invitationId: z.string().min(1).max(64) }),
  },
  async ({ invitationId }, ctx) => {
    const removed = await revokeInvitation(await getDb(), ctx, invitationId);
    revalidatePath("/members");
    return removed
      ? { ok: true, message: "Invitation withdrawn." }
      : { message: "No such invitation." };
  },
);
