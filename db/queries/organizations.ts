import "server-only";
import { and, asc, desc, eq, isNotNull, sql } from "drizzle-orm";
import type { DbOrTx } from "@/db";
import { invitations, memberships, organizations, type Role, users } from "@/db/schema";
import { FIRST_PAGE, type PageRequest } from "@/lib/paging";
import { type PageKeys, pageKeyColumns, readKeysetPage } from "./paging";

/**
 * The membership a session works in: the preferred organisation while it is still a membership,
 * otherwise the oldest one, so that a stale or missing choice falls back the same way every time.
 */
export async function getActiveMembership({
  db,
  userId,
  preferredOrgId = null,
}: {
  db: DbOrTx;
  userId: string;
  preferredOrgId?: string | null;
}) {
  const [row] = await db
    .select({ orgId: memberships.orgId, orgName: organizations.name, role: memberships.role })
    .from(memberships)
    .innerJoin(organizations, eq(organizations.id, memberships.orgId))
    .where(eq(memberships.userId, userId))
    .orderBy(
      desc(sql`${memberships.orgId} = ${preferredOrgId ?? ""}`),
      asc(memberships.createdAt),
      asc(memberships.orgId),
    )
    .limit(1);
  return row ?? null;
}

export async function listMembershipsOfUser({ db, userId }: { db: DbOrTx; userId: string }) {
  return db
    .select({ orgId: memberships.orgId, orgName: organizations.name, role: memberships.role })
    .from(memberships)
    .innerJoin(organizations, eq(organizations.id, memberships.orgId))
    .where(eq(memberships.userId, userId))
    .orderBy(asc(memberships.createdAt), asc(memberships.orgId));
}

export async function findMembership({
  db,
  orgId,
  userId,
}: {
  db: DbOrTx;
  orgId: string;
  userId: string;
}) {
  const [row] = await db
    .select({ orgName: organizations.name, role: memberships.role })
    .from(memberships)
    .innerJoin(organizations, eq(organizations.id, memberships.orgId))
    .where(and(eq(memberships.orgId, orgId), eq(memberships.userId, userId)))
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

const invitationPageKeys: PageKeys = { at: invitations.createdAt, id: invitations.id };

/**
 * One page of the invitations waiting for one address, newest first, with who sent them and
 * from which organisation (invitations_email_created_idx).
 */
export async function listInvitationsForEmail({
  db,
  email,
  page = FIRST_PAGE,
}: {
  db: DbOrTx;
  email: string;
  page?: PageRequest;
}) {
  return readKeysetPage({
    keys: invitationPageKeys,
    request: page,
    read: (position, order, limit) =>
      db
        .select({
          id: invitations.id,
          orgId: invitations.orgId,
          orgName: organizations.name,
          role: invitations.role,
          invitedByEmail: users.email,
          createdAt: invitations.createdAt,
          ...pageKeyColumns(invitationPageKeys),
        })
        .from(invitations)
        .innerJoin(organizations, eq(organizations.id, invitations.orgId))
        .leftJoin(users, eq(users.id, invitations.invitedBy))
        .where(and(eq(invitations.email, email.toLowerCase()), position))
        .orderBy(...order)
        .limit(limit),
  });
}

/** How many invitations wait for a person, counted only once their address is confirmed. */
export async function countInvitationsForUser({ db, userId }: { db: DbOrTx; userId: string }) {
  const [row] = await db
    .select({ n: sql<number>`count(*)::int` })
    .from(invitations)
    .innerJoin(users, eq(users.email, invitations.email))
    .where(and(eq(users.id, userId), isNotNull(users.emailVerified)));
  return row?.n ?? 0;
}

/**
 * Deletes one invitation addressed to `email` and returns it: the delete is what makes an
 * acceptance or a refusal happen once, however many clicks arrive together.
 */
export async function takeInvitationForEmail({
  db,
  id,
  email,
}: {
  db: DbOrTx;
  id: string;
  email: string;
}) {
  const [row] = await db
    .delete(invitations)
    .where(and(eq(invitations.id, id), eq(invitations.email, email.toLowerCase())))
    .returning({ orgId: invitations.orgId, role: invitations.role });
  return row ?? null;
}

const memberPageKeys: PageKeys = { at: memberships.createdAt, id: memberships.userId };

/** One page of the organisation's members, newest first (memberships_org_created_idx). */
export async function listMembers({
  db,
  orgId,
  page = FIRST_PAGE,
}: {
  db: DbOrTx;
  orgId: string;
  page?: PageRequest;
}) {
  return readKeysetPage({
    keys: memberPageKeys,
    request: page,
    read: (position, order, limit) =>
      db
        .select({
          userId: users.id,
          email: users.email,
          name: users.name,
          role: memberships.role,
          since: memberships.createdAt,
          ...pageKeyColumns(memberPageKeys),
        })
        .from(memberships)
        .innerJoin(users, eq(users.id, memberships.userId))
        .where(and(eq(memberships.orgId, orgId), position))
        .orderBy(...order)
        .limit(limit),
  });
}

/** How many owners the organisation has: what the last-owner rules decide on, for any page. */
export async function countOwners({ db, orgId }: { db: DbOrTx; orgId: string }) {
  const [row] = await db
    .select({ n: sql<number>`count(*)::int` })
    .from(memberships)
    .where(and(eq(memberships.orgId, orgId), eq(memberships.role, "owner")));
  return row?.n ?? 0;
}

const waitingInvitationColumns = {
  id: invitations.id,
  email: invitations.email,
  role: invitations.role,
  createdAt: invitations.createdAt,
};

/** One page of the organisation's waiting invitations, newest first (invitations_org_created_idx). */
export async function listInvitationsPage({
  db,
  orgId,
  page = FIRST_PAGE,
}: {
  db: DbOrTx;
  orgId: string;
  page?: PageRequest;
}) {
  return readKeysetPage({
    keys: invitationPageKeys,
    request: page,
    read: (position, order, limit) =>
      db
        .select({ ...waitingInvitationColumns, ...pageKeyColumns(invitationPageKeys) })
        .from(invitations)
        .where(and(eq(invitations.orgId, orgId), position))
        .orderBy(...order)
        .limit(limit),
  });
}

/** The organisation's waiting invitations, only those `invitedBy` sent when given. */
export async function listInvitations({
  db,
  orgId,
  invitedBy,
}: {
  db: DbOrTx;
  orgId: string;
  invitedBy?: string;
}) {
  return db
    .select(waitingInvitationColumns)
    .from(invitations)
    .where(
      and(
        eq(invitations.orgId, orgId),
        invitedBy === undefined ? undefined : eq(invitations.invitedBy, invitedBy),
      ),
    )
    .orderBy(asc(invitations.createdAt), asc(invitations.id));
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
    // The invitee sees who invited them last, with the role they chose.
    .onConflictDoUpdate({
      target: [invitations.orgId, invitations.email],
      set: { role, invitedBy },
    })
    .returning({ id: invitations.id });
  return row;
}

/** A waiting invitation of the organisation, by id or by address (its role decides who may change it). */
export async function findInvitation({
  db,
  orgId,
  id,
  email,
}: {
  db: DbOrTx;
  orgId: string;
  id?: string;
  email?: string;
}) {
  const [row] = await db
    .select({ id: invitations.id, role: invitations.role })
    .from(invitations)
    .where(
      and(
        eq(invitations.orgId, orgId),
        id === undefined ? undefined : eq(invitations.id, id),
        email === undefined ? undefined : eq(invitations.email, email.toLowerCase()),
      ),
    )
    .limit(1);
  return row ?? null;
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
