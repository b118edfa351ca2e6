import type { Role } from "@/db/schema";
import { hasPermission, ROLES } from "./roles";

// Who may change whom. One pure function per change, used by the server under the membership
// row lock and by the members page to offer only what the person may do.
//
// - Only owners grant, change or take away the owner role (an admin cannot invite or promote an
//   owner, nor change or remove one).
// - Nobody changes their own role, except an owner stepping down while another owner remains.
// - Owners and admins may remove themselves (leave); the last owner may not.
// - An organisation always keeps at least one owner.

export type Refusal = "not_allowed" | "owner_only" | "own_role" | "last_owner";

type Facts = { actorRole: Role; targetRole: Role; isSelf: boolean; ownerCount: number };

export function refuseRoleChange({
  actorRole,
  targetRole,
  newRole,
  isSelf,
  ownerCount,
}: Facts & { newRole: Role }): Refusal | null {
  if (!hasPermission(actorRole, "manageMembers")) return "not_allowed";
  if ((targetRole === "owner" || newRole === "owner") && actorRole !== "owner") return "owner_only";
  const isSteppingDown = targetRole === "owner" && newRole !== "owner";
  if (isSelf && !isSteppingDown) return "own_role";
  if (isSteppingDown && ownerCount <= 1) return "last_owner";
  return null;
}

export function refuseRemoval({ actorRole, targetRole, ownerCount }: Facts): Refusal | null {
  if (!hasPermission(actorRole, "manageMembers")) return "not_allowed";
  if (targetRole === "owner" && actorRole !== "owner") return "owner_only";
  if (targetRole === "owner" && ownerCount <= 1) return "last_owner";
  return null;
}

export function refuseInvitation({ actorRole, role }: { actorRole: Role; role: Role }) {
  if (!hasPermission(actorRole, "manageMembers")) return "not_allowed" as const;
  if (role === "owner" && actorRole !== "owner") return "owner_only" as const;
  return null;
}

/** The roles a person may give the target, the target's current role first. */
export function roleChoices(facts: Facts): Role[] {
  const others = ROLES.filter(
    (r) => r !== facts.targetRole && refuseRoleChange({ ...facts, newRole: r }) === null,
  );
  return others.length > 0 ? [facts.targetRole, ...others] : [];
}

export function invitableRoles(actorRole: Role): Role[] {
  return ROLES.filter((role) => refuseInvitation({ actorRole, role }) === null);
}

export const REFUSAL_MESSAGES: Record<Refusal, string> = {
  not_allowed: "Your role does not allow this.",
  owner_only: "Only an owner can grant, change or take away the owner role.",
  own_role: "You cannot change your own role. An owner may step down while another owner remains.",
  last_owner: "An organisation needs at least one owner: make someone else owner first.",
};
