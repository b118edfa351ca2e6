import "server-only";
import { and, eq } from "drizzle-orm";
import type { DbOrTx } from "@/db";
import { sessions } from "@/db/schema";

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
