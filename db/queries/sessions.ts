import "server-only";
import { and, eq, gt, inArray, ne, sql } from "drizzle-orm";
import type { DbOrTx } from "@/db";
import { memberships, sessions } from "@/db/schema";

/** Points one session of one person at an organisation; false when no such session exists. */
export async function setSessionActiveOrg({
  db,
  sessionToken,
  userId,
  orgId,
}: {
  db: DbOrTx;
  sessionToken: string;
  userId: string;
  orgId: string;
}) {
  const rows = await db
    .update(sessions)
    .set({ activeOrgId: orgId })
    .where(and(eq(sessions.sessionToken, sessionToken), eq(sessions.userId, userId)))
    .returning({ userId: sessions.userId });
  return rows.length > 0;
}

/** Whether the session is still there and unexpired (not signed out, nor everyone signed out). */
export async function isSessionLive({
  db,
  sessionToken,
  userId,
}: {
  db: DbOrTx;
  sessionToken: string;
  userId: string;
}) {
  const rows = await db
    .select({ userId: sessions.userId })
    .from(sessions)
    .where(
      and(
        eq(sessions.sessionToken, sessionToken),
        eq(sessions.userId, userId),
        gt(sessions.expires, new Date()),
      ),
    )
    .limit(1);
  return rows.length > 0;
}

/** Deletes one session (signing out) and returns it, so the sign-out can say whose it was. */
export async function deleteSession({ db, sessionToken }: { db: DbOrTx; sessionToken: string }) {
  const [row] = await db
    .delete(sessions)
    .where(eq(sessions.sessionToken, sessionToken))
    .returning();
  return row ?? null;
}

/**
 * Deletes every session of every member of the organisation but the one kept (the caller's own,
 * or none). Members of other organisations lose those sessions too: a session is a person's.
 */
export async function deleteSessionsOfOrgMembers({
  db,
  orgId,
  keepSessionToken,
}: {
  db: DbOrTx;
  orgId: string;
  keepSessionToken: string | null;
}) {
  const members = db
    .select({ userId: memberships.userId })
    .from(memberships)
    .where(eq(memberships.orgId, orgId));
  const rows = await db
    .delete(sessions)
    .where(
      and(
        inArray(sessions.userId, members),
        keepSessionToken ? ne(sessions.sessionToken, keepSessionToken) : undefined,
      ),
    )
    .returning({ userId: sessions.userId });
  return { sessions: rows.length, people: new Set(rows.map((r) => r.userId)).size };
}

/** Members of this organisation who also belong to another one (signed out there too). */
export async function countMembersInOtherOrgs({ db, orgId }: { db: DbOrTx; orgId: string }) {
  const [row] = await db
    .select({ n: sql<number>`count(distinct ${memberships.userId})::int` })
    .from(memberships)
    .where(
      and(
        ne(memberships.orgId, orgId),
        inArray(
          memberships.userId,
          db
            .select({ userId: memberships.userId })
            .from(memberships)
            .where(eq(memberships.orgId, orgId)),
        ),
      ),
    );
  return Number(row?.n ?? 0);
}
