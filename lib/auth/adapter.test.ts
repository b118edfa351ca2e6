import { eq } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { getDb } from "@/db";
import { accounts, sessions } from "@/db/schema";
import { createOwner, createUser, joinOrganization } from "@/lib/testing/factories";
import { tokenlessAdapter } from "./adapter";

describe("sign-in adapter", () => {
  it("links the account but stores none of the provider's tokens", async () => {
    const db = await getDb();
    const user = await createUser("signin");
    await tokenlessAdapter(db).linkAccount?.({
      userId: user.id,
      type: "oidc",
      provider: "demo",
      providerAccountId: user.email ?? user.id,
      access_token: "access-token-plaintext",
      refresh_token: "refresh-token-plaintext",
      id_token: "eyJ.id.token",
      expires_at: 1_900_000_000,
      token_type: "bearer",
      scope: "openid email profile",
    });
    const [row] = await db.select().from(accounts).where(eq(accounts.userId, user.id));
    expect(row).toMatchObject({ provider: "demo", scope: "openid email profile" });
    expect(row?.access_token).toBeNull();
    expect(row?.refresh_token).toBeNull();
    expect(row?.id_token).toBeNull();
    expect(JSON.stringify(row)).not.toContain("plaintext");
  });

  it("starts a session in the person's oldest organisation and still reads and deletes it", async () => {
    const db = await getDb();
    const adapter = tokenlessAdapter(db);
    const own = await createOwner("member");
    const other = await createOwner("other");
    await joinOrganization({
      orgId: other.orgId,
      inviterId: other.user.id,
      user: own.user,
      role: "sender",
    });

    const sessionToken = `token-${own.user.id}`;
    await adapter.createSession?.({
      sessionToken,
      userId: own.user.id,
      expires: new Date(Date.now() + 60_000),
    });
    const read = await adapter.getSessionAndUser?.(sessionToken);
    expect(read?.user.id).toBe(own.user.id);
    expect(read?.session.activeOrgId).toBe(own.orgId);

    await adapter.updateSession?.({ sessionToken, expires: new Date(Date.now() + 120_000) });
    expect((await adapter.getSessionAndUser?.(sessionToken))?.session.activeOrgId).toBe(own.orgId);

    await adapter.deleteSession?.(sessionToken);
    expect(await db.select().from(sessions).where(eq(sessions.sessionToken, sessionToken))).toEqual(
      [],
    );
  });

  it("starts a first session with no organisation chosen yet", async () => {
    const db = await getDb();
    const user = await createUser("first");
    await tokenlessAdapter(db).createSession?.({
      sessionToken: `token-${user.id}`,
      userId: user.id,
      expires: new Date(Date.now() + 60_000),
    });
    const [row] = await db.select().from(sessions).where(eq(sessions.userId, user.id));
    expect(row?.activeOrgId).toBeNull();
  });
});
