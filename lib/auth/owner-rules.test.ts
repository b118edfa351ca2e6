import { and, eq, sql } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { getDb } from "@/db";
import { auditEvents, invitations, memberships, type Role } from "@/db/schema";
import { memberContext } from "@/lib/testing/context";
import { createOwner, createUser } from "@/lib/testing/factories";
import {
  changeMemberRole,
  inviteMember,
  LastOwnerError,
  MemberRuleError,
  removeMember,
} from "./members";
import { ROLES } from "./roles";

// Every (acting role, target's role, new role), including a person acting on themselves, against
// the real database: what is allowed happens with one success event; what is refused changes no
// row and leaves a denied event (the last-owner guard refuses without one, as before).

const ALL: Role[] = [...ROLES];
const NOT_OWNER: Role[] = ["admin", "sender", "compliance"];

// acting role → target's role → the new roles that are allowed (the same role is a no-op).
const MAY_CHANGE: Record<Role, Record<Role, Role[]>> = {
  owner: { owner: ALL, admin: ALL, sender: ALL, compliance: ALL },
  admin: { owner: [], admin: NOT_OWNER, sender: NOT_OWNER, compliance: NOT_OWNER },
  sender: { owner: [], admin: [], sender: [], compliance: [] },
  compliance: { owner: [], admin: [], sender: [], compliance: [] },
};
// Own role: only an owner stepping down, and only while another owner remains.
const MAY_CHANGE_OWN: Record<Role, Role[]> = {
  owner: NOT_OWNER,
  admin: [],
  sender: [],
  compliance: [],
};
// acting role → the target roles they may remove.
const MAY_REMOVE: Record<Role, Role[]> = {
  owner: ALL,
  admin: NOT_OWNER,
  sender: [],
  compliance: [],
};
// Leaving: owners (while another owner remains) and admins.
const MAY_LEAVE: Role[] = ["owner", "admin"];
const MAY_INVITE: Record<Role, Role[]> = {
  owner: ALL,
  admin: NOT_OWNER,
  sender: [],
  compliance: [],
};

/** An organisation whose founder stays owner, with the acting person and a target in it. */
async function organisation(actorRole: Role, targetRole: Role | null) {
  const db = await getDb();
  const { orgId } = await createOwner("founder");
  const actor = await createUser(`acting-${actorRole}`);
  await db.insert(memberships).values({ orgId, userId: actor.id, role: actorRole });
  const target = targetRole ? await createUser(`target-${targetRole}`) : actor;
  if (targetRole)
    await db.insert(memberships).values({ orgId, userId: target.id, role: targetRole });
  return { orgId, actor, target, ctx: memberContext(orgId, actor, actorRole) };
}

async function roleOf(orgId: string, userId: string) {
  const db = await getDb();
  const [row] = await db
    .select({ role: memberships.role })
    .from(memberships)
    .where(and(eq(memberships.orgId, orgId), eq(memberships.userId, userId)));
  return row?.role ?? null;
}

async function eventsAbout(orgId: string, targetId: string) {
  const db = await getDb();
  return db
    .select({ action: auditEvents.action, outcome: auditEvents.outcome })
    .from(auditEvents)
    .where(and(eq(auditEvents.orgId, orgId), eq(auditEvents.targetId, targetId)));
}

/** Invitation events naming `email`: in their erasable `personal` fields, never as target id. */
async function invitationEventsNaming(orgId: string, email: string) {
  const db = await getDb();
  return db
    .select({
      outcome: auditEvents.outcome,
      targetType: auditEvents.targetType,
      targetId: auditEvents.targetId,
    })
    .from(auditEvents)
    .where(
      and(
        eq(auditEvents.orgId, orgId),
        eq(auditEvents.action, "member.invited"),
        sql`${auditEvents.personal}->>'email' = ${email}`,
      ),
    );
}

async function expectRefused(work: Promise<unknown>, orgId: string, targetId: string) {
  await expect(work).rejects.toThrow(MemberRuleError);
  expect(await eventsAbout(orgId, targetId)).toEqual([
    expect.objectContaining({ outcome: "denied" }),
  ]);
}

const changes = ALL.flatMap((actorRole) =>
  ALL.flatMap((targetRole) =>
    ALL.map((newRole) => ({
      actorRole,
      targetRole,
      newRole,
      isAllowed: MAY_CHANGE[actorRole][targetRole].includes(newRole),
    })),
  ),
);

describe("owner rules: changing someone else's role", () => {
  it.each(changes)(
    "$actorRole sets a $targetRole to $newRole: allowed $isAllowed",
    async ({ actorRole, targetRole, newRole, isAllowed }) => {
      const db = await getDb();
      const { orgId, target, ctx } = await organisation(actorRole, targetRole);
      const work = changeMemberRole(db, ctx, { userId: target.id, role: newRole });
      if (!isAllowed) {
        await expectRefused(work, orgId, target.id);
        expect(await roleOf(orgId, target.id)).toBe(targetRole);
        return;
      }
      await work;
      expect(await roleOf(orgId, target.id)).toBe(newRole);
      const expected =
        newRole === targetRole ? [] : [{ action: "member.role_changed", outcome: "success" }];
      expect(await eventsAbout(orgId, target.id)).toEqual(expected);
    },
  );
});

const ownChanges = ALL.flatMap((role) =>
  ALL.map((newRole) => ({ role, newRole, isAllowed: MAY_CHANGE_OWN[role].includes(newRole) })),
);

describe("owner rules: changing one's own role", () => {
  it.each(ownChanges)(
    "a $role sets their own role to $newRole: allowed $isAllowed",
    async ({ role, newRole, isAllowed }) => {
      const db = await getDb();
      const { orgId, actor, ctx } = await organisation(role, null);
      const work = changeMemberRole(db, ctx, { userId: actor.id, role: newRole });
      if (!isAllowed) {
        await expectRefused(work, orgId, actor.id);
        expect(await roleOf(orgId, actor.id)).toBe(role);
        return;
      }
      await work;
      expect(await roleOf(orgId, actor.id)).toBe(newRole);
      expect(await eventsAbout(orgId, actor.id)).toEqual([
        { action: "member.role_changed", outcome: "success" },
      ]);
    },
  );

  it("the last owner cannot step down or leave", async () => {
    const db = await getDb();
    const { user, orgId } = await createOwner("sole");
    const ctx = memberContext(orgId, user, "owner");
    for (const role of NOT_OWNER) {
      await expect(changeMemberRole(db, ctx, { userId: user.id, role })).rejects.toThrow(
        LastOwnerError,
      );
    }
    await expect(removeMember(db, ctx, user.id)).rejects.toThrow(LastOwnerError);
    expect(await roleOf(orgId, user.id)).toBe("owner");
  });
});

const removals = ALL.flatMap((actorRole) =>
  ALL.map((targetRole) => ({
    actorRole,
    targetRole,
    isAllowed: MAY_REMOVE[actorRole].includes(targetRole),
  })),
);

describe("owner rules: removing", () => {
  it.each(removals)(
    "$actorRole removes a $targetRole: allowed $isAllowed",
    async ({ actorRole, targetRole, isAllowed }) => {
      const db = await getDb();
      const { orgId, target, ctx } = await organisation(actorRole, targetRole);
      const work = removeMember(db, ctx, target.id);
      if (!isAllowed) {
        await expectRefused(work, orgId, target.id);
        expect(await roleOf(orgId, target.id)).toBe(targetRole);
        return;
      }
      await work;
      expect(await roleOf(orgId, target.id)).toBeNull();
      expect(await eventsAbout(orgId, target.id)).toEqual([
        { action: "member.removed", outcome: "success" },
      ]);
    },
  );

  it.each(ALL.map((role) => ({ role, isAllowed: MAY_LEAVE.includes(role) })))(
    "a $role leaves: allowed $isAllowed",
    async ({ role, isAllowed }) => {
      const db = await getDb();
      const { orgId, actor, ctx } = await organisation(role, null);
      const work = removeMember(db, ctx, actor.id);
      if (!isAllowed) {
        await expectRefused(work, orgId, actor.id);
        expect(await roleOf(orgId, actor.id)).toBe(role);
        return;
      }
      await work;
      expect(await roleOf(orgId, actor.id)).toBeNull();
    },
  );
});

const invites = ALL.flatMap((actorRole) =>
  ALL.map((role) => ({ actorRole, role, isAllowed: MAY_INVITE[actorRole].includes(role) })),
);

describe("owner rules: inviting", () => {
  it.each(invites)(
    "$actorRole invites someone as $role: allowed $isAllowed",
    async ({ actorRole, role, isAllowed }) => {
      const db = await getDb();
      const { orgId, ctx } = await organisation(actorRole, null);
      const email = `invitee-${crypto.randomUUID().slice(0, 8)}@example.test`;
      const work = inviteMember(db, ctx, { email, role });
      const stored = () =>
        db
          .select({ role: invitations.role })
          .from(invitations)
          .where(and(eq(invitations.orgId, orgId), eq(invitations.email, email)));
      if (!isAllowed) {
        await expect(work).rejects.toThrow(MemberRuleError);
        expect(await invitationEventsNaming(orgId, email)).toEqual([
          { outcome: "denied", targetType: "invitation", targetId: null },
        ]);
        expect(await stored()).toEqual([]);
        return;
      }
      await work;
      expect(await stored()).toEqual([{ role }]);
    },
  );
});
