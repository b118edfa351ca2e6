import { eq } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { getDb } from "@/db";
import { accounts } from "@/db/schema";
import { createUser } from "@/lib/testing/factories";
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
});
