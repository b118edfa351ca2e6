import "server-only";
import { and, desc, eq, isNull, sql } from "drizzle-orm";
import type { DbOrTx } from "@/db";
import { notices } from "@/db/schema";

export async function listUnreadNotices({
  db,
  orgId,
  userId,
}: {
  db: DbOrTx;
  orgId: string;
  userId: string;
}) {
  return db
    .select({
      id: notices.id,
      title: notices.title,
      body: notices.body,
      createdAt: notices.createdAt,
    })
    .from(notices)
    .where(and(eq(notices.orgId, orgId), eq(notices.userId, userId), isNull(notices.readAt)))
    .orderBy(desc(notices.createdAt))
    .limit(10);
}

export async function markNoticeRead({
  db,
  orgId,
  userId,
  noticeId,
}: {
  db: DbOrTx;
  orgId: string;
  userId: string;
  noticeId: string;
}) {
  await db
    .update(notices)
    .set({ readAt: new Date() })
    .where(and(eq(notices.orgId, orgId), eq(notices.userId, userId), eq(notices.id, noticeId)));
}

export async function countUnreadNotices({
  db,
  orgId,
  userId,
}: {
  db: DbOrTx;
  orgId: string;
  userId: string;
}) {
  const [row] = await db
    .select({ n: sql<number>`count(*)::int` })
    .from(notices)
    .where(and(eq(notices.orgId, orgId), eq(notices.userId, userId), isNull(notices.readAt)));
  return Number(row?.n ?? 0);
}
