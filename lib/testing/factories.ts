import { randomUUID } from "node:crypto";
import { getDb } from "@/db";
import { getActiveMembership } from "@/db/queries/organizations";
import { users } from "@/db/schema";
import { settleMemberships } from "@/lib/auth/members";

// Test factories: every test makes its own people and organisation on the shared database.

export async function createUser(prefix = "user") {
  const db = await getDb();
  const email = `${prefix}-${randomUUID().slice(0, 8)}@example.test`;
  const [user] = await db.insert(users).values({ email, name: prefix }).returning();
  if (!user) throw new Error("user insert returned nothing");
  return user;
}

/** A user who signed in and so owns a new organisation. */
export async function createOwner(prefix = "owner") {
  const db = await getDb();
  const user = await createUser(prefix);
  await settleMemberships(db, user, { isEmailVerified: true });
  const membership = await getActiveMembership({ db, userId: user.id });
  if (!membership) throw new Error("owner has no organisation");
  return { user, orgId: membership.orgId };
}
