import { createHash } from "node:crypto";
import { and, eq } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { getDb } from "@/db";
import { apiKeys, auditEvents } from "@/db/schema";
import { insertMailboxRow } from "@/lib/oauth/testing/fixtures";
import { memberContext } from "@/lib/testing/context";
import { createOwner } from "@/lib/testing/factories";
import {
  ApiKeyForbiddenError,
  ApiKeyInputError,
  ApiKeyNotFoundError,
  createApiKey,
  listApiKeysForOrg,
  restrictApiKey,
  revokeApiKey,
  verifyApiKey,
} from "./api-keys";

const REQUEST = { ip: "192.0.2.10", userAgent: "vitest" };

async function ownerAndActor() {
  const owner = await createOwner();
  return {
    owner,
    actor: memberContext(owner.orgId, { id: owner.user.id, email: "owner" }, "owner", REQUEST),
  };
}

describe("API keys", () => {
  it("shows the secret once and stores only its SHA-256", async () => {
    const { owner, actor } = await ownerAndActor();
    const { key, token } = await createApiKey({
      ctx: actor,
      name: "Billing service",
    });
    expect(token).toMatch(/^mwk_[0-9a-f]{12}_[A-Za-z0-9_-]{43}$/);
    const [, prefix, secret] = /^mwk_([0-9a-f]{12})_(.+)$/.exec(token) ?? [];
    expect(key.prefix).toBe(prefix);
    expect(Buffer.from(secret ?? "", "base64url")).toHaveLength(32);
    expect(JSON.stringify(key)).not.toContain(secret);

    const db = await getDb();
    const [row] = await db.select().from(apiKeys).where(eq(apiKeys.id, key.id));
    expect(row?.secretHash).toBe(
      createHash("sha256")
        .update(secret ?? "")
        .digest("hex"),
    );
    expect(JSON.stringify(row)).not.toContain(secret);

    const { rows: listed } = await listApiKeysForOrg({ orgId: owner.orgId });
    expect(listed).toHaveLength(1);
    expect(listed[0]).not.toHaveProperty("secretHash");

    const [event] = await db
      .select()
      .from(auditEvents)
      .where(and(eq(auditEvents.targetId, key.id), eq(auditEvents.action, "api_key.created")));
    expect(event).toBeDefined();
    expect(JSON.stringify(event)).not.toContain(secret);
    expect(JSON.stringify(event)).not.toContain(row?.secretHash);
  });

  it("verifies a bearer token, refuses a wrong secret, and records last use", async () => {
    const { owner, actor } = await ownerAndActor();
    const { key, token } = await createApiKey({
      ctx: actor,
      name: "k",
    });
    const verified = await verifyApiKey(token);
    expect(verified).toEqual({
      id: key.id,
      orgId: owner.orgId,
      name: "k",
      allowedMailboxIds: null,
    });
    const db = await getDb();
    const [row] = await db.select().from(apiKeys).where(eq(apiKeys.id, key.id));
    expect(row?.lastUsedAt).toBeInstanceOf(Date);

    const wrong = `${token.slice(0, 18)}${"A".repeat(43)}`;
    expect(await verifyApiKey(wrong)).toBeNull();
    expect(await verifyApiKey(`${token}x`)).toBeNull();
    expect(await verifyApiKey(`mwk_000000000000_${"A".repeat(43)}`)).toBeNull();
    expect(await verifyApiKey("")).toBeNull();
  });

  it("a revoked key is refused, and revoking is audited", async () => {
    const { actor } = await ownerAndActor();
    const { key, token } = await createApiKey({
      ctx: actor,
      name: "k",
    });
    await revokeApiKey({ ctx: actor, keyId: key.id });
    expect(await verifyApiKey(token)).toBeNull();
    await expect(revokeApiKey({ ctx: actor, keyId: key.id })).rejects.toBeInstanceOf(
      ApiKeyNotFoundError,
    );
    const db = await getDb();
    const events = await db.select().from(auditEvents).where(eq(auditEvents.targetId, key.id));
    expect(events.map((e) => e.action)).toContain("api_key.revoked");
  });

  it("restricts to mailboxes of the organisation only; other organisations' keys are not found", async () => {
    const { owner, actor } = await ownerAndActor();
    const other = await ownerAndActor();
    const mine = await insertMailboxRow({ person: owner, provider: "demo" });
    const theirs = await insertMailboxRow({ person: other.owner, provider: "demo" });
    await expect(
      createApiKey({
        ctx: actor,
        name: "k",
        allowedMailboxIds: [mine, theirs],
      }),
    ).rejects.toBeInstanceOf(ApiKeyInputError);

    const { key } = await createApiKey({
      ctx: actor,
      name: "k",
      allowedMailboxIds: [mine],
    });
    expect(key.allowedMailboxIds).toEqual([mine]);
    const widened = await restrictApiKey({
      ctx: actor,
      keyId: key.id,
      allowedMailboxIds: null,
    });
    expect(widened.allowedMailboxIds).toBeNull();
    await expect(
      revokeApiKey({
        ctx: other.actor,
        keyId: key.id,
      }),
    ).rejects.toBeInstanceOf(ApiKeyNotFoundError);
  });

  it("only owners and admins manage keys", async () => {
    const { owner } = await ownerAndActor();
    await expect(
      createApiKey({
        ctx: memberContext(owner.orgId, owner.user, "sender", REQUEST),
        name: "k",
      }),
    ).rejects.toBeInstanceOf(ApiKeyForbiddenError);
  });

  it("an expired key is refused like a revoked one, and a past expiry is refused", async () => {
    const { owner, actor } = await ownerAndActor();
    await expect(
      createApiKey({ ctx: actor, name: "Past", expiresAt: new Date(Date.now() - 1000) }),
    ).rejects.toMatchObject({ name: "ApiKeyInputError", field: "expiresAt" });
    const { key, token } = await createApiKey({
      ctx: actor,
      name: "Short-lived",
      expiresAt: new Date(Date.now() + 60_000),
    });
    expect((await verifyApiKey(token))?.id).toBe(key.id);
    const db = await getDb();
    await db
      .update(apiKeys)
      .set({ expiresAt: new Date(Date.now() - 1000) })
      .where(eq(apiKeys.id, key.id));
    expect(await verifyApiKey(token)).toBeNull();
    const { rows: listed } = await listApiKeysForOrg({ orgId: owner.orgId });
    expect(listed[0]?.expiresAt?.getTime()).toBeLessThan(Date.now());
  });
});
