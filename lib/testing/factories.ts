import { randomUUID } from "node:crypto";
import { and, eq } from "drizzle-orm";
import { getDb } from "@/db";
import { getActiveMembership, insertMembership } from "@/db/queries/organizations";
import { recordEmailVerification } from "@/db/queries/users";
import { invitations, type Role, users, webhookDeliveries, webhookEndpoints } from "@/db/schema";
import { tokenlessAdapter } from "@/lib/auth/adapter";
import { inviteMember, settleMemberships } from "@/lib/auth/members";
import { acceptInvitation } from "@/lib/auth/organizations";
import { sealWebhookSecret } from "@/lib/webhooks/secrets";
import { generateWebhookSecret } from "@/lib/webhooks/signing";
import { memberContext } from "./context";

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

/** A new person who is a member of the organisation with this role (no invitation step). */
export async function createMember(orgId: string, role: Role, prefix: string = role) {
  const user = await createUser(prefix);
  await insertMembership({ db: await getDb(), orgId, userId: user.id, role });
  return user;
}

/** A session row for `userId`, made the way sign-in makes one. */
export async function createSession(userId: string) {
  const db = await getDb();
  const sessionToken = randomUUID();
  await tokenlessAdapter(db).createSession?.({
    sessionToken,
    userId,
    expires: new Date(Date.now() + 3600_000),
  });
  return sessionToken;
}

/** Invites `user` into `orgId` as `role` and accepts for them, as the two clicks would. */
export async function joinOrganization({
  orgId,
  inviterId,
  user,
  role,
}: {
  orgId: string;
  inviterId: string;
  user: { id: string; email: string | null };
  role: Role;
}) {
  const db = await getDb();
  await inviteMember(db, memberContext(orgId, { id: inviterId }, "owner"), {
    email: user.email ?? "",
    role,
  });
  await recordEmailVerification({ db, userId: user.id, isVerified: true });
  const [invite] = await db
    .select({ id: invitations.id })
    .from(invitations)
    .where(and(eq(invitations.orgId, orgId), eq(invitations.email, user.email ?? "")));
  if (!invite) throw new Error("no invitation to accept");
  const answer = await acceptInvitation(
    db,
    { ctx: memberContext(orgId, user, role), sessionToken: "" },
    invite.id,
  );
  if (!answer.ok) throw new Error(`invitation not accepted: ${answer.reason}`);
}

/**
 * Rows as the webhook code leaves them: an endpoint of the organisation (no receiver behind it)
 * and one delivery per entry, with the body, state and finish time given. Returns their ids.
 */
export async function insertWebhookDeliveries(
  orgId: string,
  deliveries: Array<{
    body: string;
    status: "pending" | "delivered" | "failed";
    finishedAt?: Date;
  }>,
): Promise<string[]> {
  const db = await getDb();
  // Sealed like a real one: key rotation, in any test file after this one, opens every secret.
  const endpointId = randomUUID();
  await db.insert(webhookEndpoints).values({
    id: endpointId,
    orgId,
    url: "https://hooks.example.test/in",
    events: ["message.sent"],
    secret: sealWebhookSecret(endpointId, "secret", generateWebhookSecret()),
  });
  const rows = await db
    .insert(webhookDeliveries)
    .values(
      deliveries.map((d) => ({
        id: `msg_${randomUUID().replaceAll("-", "")}`,
        orgId,
        endpointId,
        eventType: "message.sent",
        body: d.body,
        status: d.status,
        nextAttemptAt: d.status === "pending" ? new Date() : null,
        deadlineAt: new Date(Date.now() + 86_400_000),
        finishedAt: d.finishedAt ?? (d.status === "pending" ? null : new Date()),
      })),
    )
    .returning({ id: webhookDeliveries.id });
  return rows.map((r) => r.id);
}
