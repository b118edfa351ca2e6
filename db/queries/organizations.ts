import "server-only";
import { and, asc, desc, eq, sql } from "drizzle-orm";
import type { DbOrTx } from "@/db";
import { invitations, memberships, organizations, type Role, users } from "@/db/schema";

export async function getActiveMembership({ db, userId }: { db: DbOrTx; userId: string }) {
  const [row] = await db
    .select({ orgId: memberships.orgId, orgName: organizations.name, role: memberships.role })
    .from(memberships)
    .innerJoin(organizations, eq(organizations.id, memberships.orgId))
    .where(eq(memberships.userId, userId))
    .orderBy(desc(memberships.createdAt))
    .limit(1);
  return row ?? null;
}

export async function countMemberships({ db, userId }: { db: DbOrTx; userId: string }) {
  const [row] = await db
    .select({ n: sql<number>`count(*)::int` })
    .from(memberships)
    .where(eq(memberships.userId, userId));
  return row?.n ?? 0;
}

export async function insertOrganization({ db, name }: { db: DbOrTx; name: string }) {
  const [org] = await db.insert(organizations).values({ name }).returning();
  if (!org) throw new Error("organization insert returned nothing");
  return org;
}

export async function insertMembership({
  db,
  orgId,
  userId,
  role,
}: {
  db: DbOrTx;
  orgId: string;
  userId: string;
  role: Role;
}) {
  await db.insert(memberships).values({ orgId, userId, role }).onConflictDoNothing();
}

export async function takeInvitationsForEmail({ db, email }: { db: DbOrTx; email: string }) {
  return db.delete(invitations).where(eq(invitations.email, email.toLowerCase())).returning({
    orgId: invitations.orgId,
    role: invitations.role,
  });
}

export async function listMembers({ db, orgId }: { db: DbOrTx; orgId: string }) {
  return db
    .select({
      userId: users.id,
      email: users.email,
      name: users.name,
      role: memberships.role,
      since: memberships.createdAt,
    })
    .from(memberships)
    .innerJoin(users, eq(users.id, memberships.userId))
    .where(eq(memberships.orgId, orgId))
    .orderBy(asc(memberships.createdAt));
}

export async function listInvitations({ db, orgId }: { db: DbOrTx; orgId: string }) {
  return db
    .select({
      id: invitations.id,
      email: invitations.email,
      role: invitations.role,
      createdAt: invitations.createdAt,
    })
    .from(invitations)
    .where(eq(invitations.orgId, orgId))
    .orderBy(asc(invitations.createdAt));
}

export async function findMemberByEmail({
  db,
  orgId,
  email,
}: {
  db: DbOrTx;
  orgId: string;
  email: string;
}) {
  const [row] = await db
    .select({ userId: users.id, role: memberships.role })
    .from(memberships)
    .innerJoin(users, eq(users.id, memberships.userId))
    .where(and(eq(memberships.orgId, orgId), eq(users.email, email.toLowerCase())))
    .limit(1);
  return row ?? null;
}

export async function upsertInvitation({
  db,
  orgId,
  email,
  role,
  invitedBy,
}: {
  db: DbOrTx;
  orgId: string;
  email: string;
  role: Role;
  invitedBy: string;
}) {
  const [row] = await db
    .insert(invitations)
    .values({ orgId, email: email.toLowerCase(), role, invitedBy })
    .onConflictDoUpdate({ target: [invitations.orgId, invitations.email], set: { role } })
    .returning({ id: invitations.id });
  return row;
}

export async function deleteInvitation({
  db,
  orgId,
  id,
}: {
  db: DbOrTx;
  orgId: string;
  id: string;
}) {
  const [row] = await db
    .delete(invitations)
    .where(and(eq(invitations.orgId, orgId), eq(invitations.id, id)))
    .returning({ email: invitations.email });
  return row ?? null;
}

/** Locks the organisation's membership rows so that "the last owner" is decided once. */
export async function lockMemberships({ db, orgId }: { db: DbOrTx; orgId: string }) {
  const rows = await db
    .select({ userId: memberships.userId, role: memberships.role })
    .from(memberships)
    .where(eq(memberships.orgId, orgId))
    .for("update");
  return rows;
}

export async function updateMemberRole({
  db,
  orgId,
  userId,
  role,
}: {
  db: DbOrTx;
  orgId: string;
  userId: string;
  role: Role;
}) {
  await db
    .update(memberships)
    .set({ role })
    .where(and(eq(memberships.orgId, orgId), eq(memberships.userId, userId)));
}

export async function deleteMembership({
  db,
  orgId,
  userId,
}: {
  db: DbOrTx;
  orgId: string;
  userId: string;
}) {
  await db
    .delete(memberships)
    .where(and(eq(memberships.orgId, orgId), eq(memberships.userId, userId)));
}

/** The person's role in one organisation, or null; locked against a concurrent change. */
export async function lockMembershipRole({
  db,
  orgId,
  userId,
}: {
  db: DbOrTx;
  orgId: string;
  userId: string;
}) {
  const [row] = await db
    .select({ role: memberships.role })
    .from(memberships)
    .where(and(eq(memberships.orgId, orgId), eq(memberships.userId, userId)))
    .limit(1)
    .for("share");
  return row?.role ?? null;
}
