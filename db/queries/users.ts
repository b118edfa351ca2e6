import "server-only";
import { eq, sql } from "drizzle-orm";
import type { DbOrTx } from "@/db";
import { users } from "@/db/schema";

/**
 * Records whether the provider confirmed the person's address at their latest sign-in. Auth.js
 * leaves `email_verified` empty for OAuth sign-ins; invitations are accepted only when it is set.
 */
export async function recordEmailVerification({
  db,
  userId,
  isVerified,
}: {
  db: DbOrTx;
  userId: string;
  isVerified: boolean;
}) {
  await db
    .update(users)
    .set({ emailVerified: isVerified ? sql`coalesce(${users.emailVerified}, now())` : null })
    .where(eq(users.id, userId));
}

export async function getUserEmail({ db, userId }: { db: DbOrTx; userId: string }) {
  const [row] = await db
    .select({ email: users.email, emailVerified: users.emailVerified })
    .from(users)
    .where(eq(users.id, userId))
    .limit(1);
  return row ?? null;
}
