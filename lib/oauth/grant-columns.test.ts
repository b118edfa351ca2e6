import { describe, expect, it } from "vitest";
import type { Mailbox } from "@/db/schema";
import { isEncryptedValue, keyIdOf } from "@/lib/crypto";
import { memberContext } from "@/lib/testing/context";
import { createOwner } from "@/lib/testing/factories";
import { MailboxNeedsReconnectError } from "./errors";
import { revokeMailbox } from "./revoke";
import { currentKeyId, openMailboxToken } from "./sealed";
import {
  connectDemoMailbox,
  expireAccessToken,
  insertMailboxRow,
  type Person,
  REQUEST,
  readMailbox,
} from "./testing/fixtures";
import { useProviderTestbeds } from "./testing/testbeds";
import { revokeToken } from "./token-endpoint";
import { getAccessToken, markMailboxUnusable } from "./tokens";

// The mailbox row after each step of a grant's life, read the way someone with database access
// would: which token columns hold what. The columns are listed here, not imported, so that a
// change to the set written in grant-columns.ts has to show up in this file too.

const beds = useProviderTestbeds({ microsoft: true });

const TOKEN_COLUMNS = [
  "accessTokenEnc",
  "accessTokenExpiresAt",
  "refreshTokenEnc",
  "keyId",
] as const;

function tokenColumns(row: Mailbox) {
  return Object.fromEntries(TOKEN_COLUMNS.map((c) => [c, row[c]]));
}

/** Both tokens present, sealed for this row under the current key, and readable only so. */
function expectSealed(row: Mailbox, plain: { accessToken: string; refreshToken: string }) {
  expect(tokenColumns(row)).toEqual({
    accessTokenEnc: expect.any(String),
    accessTokenExpiresAt: expect.any(Date),
    refreshTokenEnc: expect.any(String),
    keyId: currentKeyId(),
  });
  const access = row.accessTokenEnc ?? "";
  const refresh = row.refreshTokenEnc ?? "";
  expect(isEncryptedValue(access) && isEncryptedValue(refresh)).toBe(true);
  expect([keyIdOf(access), keyIdOf(refresh)]).toEqual([currentKeyId(), currentKeyId()]);
  expect(openMailboxToken(row.id, "access_token", access)).toBe(plain.accessToken);
  expect(openMailboxToken(row.id, "refresh_token", refresh)).toBe(plain.refreshToken);
  // Nowhere in the row, in any column, as plain text.
  const stored = JSON.stringify(row);
  expect(stored).not.toContain(plain.accessToken);
  expect(stored).not.toContain(plain.refreshToken);
}

function expectCleared(row: Mailbox) {
  expect(tokenColumns(row)).toEqual({
    accessTokenEnc: null,
    accessTokenExpiresAt: null,
    refreshTokenEnc: null,
    keyId: null,
  });
}

const email = () => `grant-${Math.random().toString(36).slice(2, 10)}@example.test`;

async function connected(person: Person) {
  const { result } = await connectDemoMailbox(person, { email: email() });
  if (result.kind !== "connected") throw new Error(`not connected: ${result.kind}`);
  const issued = beds.demo.proxy.issued.at(-1);
  if (!issued?.refreshToken) throw new Error("the provider issued no refresh token");
  return {
    id: result.mailboxId,
    accessToken: issued.accessToken,
    refreshToken: issued.refreshToken,
  };
}

describe("the token columns through a grant's life", () => {
  it("connect: both tokens sealed, the expiry and the granted scopes recorded", async () => {
    const box = await connected(await createOwner());
    const row = await readMailbox(box.id);
    expectSealed(row, box);
    expect(row.accessTokenExpiresAt?.getTime()).toBeGreaterThan(Date.now());
    expect(row.grantedScopes).toContain("mail.send");
    expect(await beds.demo.introspect(box.accessToken)).toMatchObject({ active: true });
  });

  it("refresh with rotation: both tokens replaced; the old refresh token is not kept", async () => {
    const box = await connected(await createOwner());
    await expireAccessToken(box.id);
    const before = await readMailbox(box.id);

    const token = await getAccessToken(box.id);
    const after = await readMailbox(box.id);
    const rotated = openMailboxToken(box.id, "refresh_token", after.refreshTokenEnc ?? "");
    expect(rotated).not.toBe(box.refreshToken);
    expectSealed(after, { accessToken: token.accessToken, refreshToken: rotated });
    expect(after.accessTokenEnc).not.toBe(before.accessTokenEnc);
    expect(after.accessTokenExpiresAt?.getTime()).toBe(token.expiresAt.getTime());
    expect(JSON.stringify(after)).not.toContain(box.refreshToken);
  });

  it("refresh without a new refresh token: the access token replaced, the refresh token and scopes kept as they were", async () => {
    const owner = await createOwner();
    const scopes = ["https://outlook.office.com/SMTP.Send", "offline_access"];
    const id = await insertMailboxRow({
      person: owner,
      provider: "microsoft",
      accessToken: "ms-access-old",
      refreshToken: "ms-refresh-kept",
      scopes,
    });
    const before = await readMailbox(id);
    beds.microsoft.answer = {
      status: 200,
      body: { token_type: "Bearer", access_token: "ms-access-new", expires_in: 3600 },
    };

    expect(await getAccessToken(id)).toMatchObject({ accessToken: "ms-access-new" });
    const after = await readMailbox(id);
    expectSealed(after, { accessToken: "ms-access-new", refreshToken: "ms-refresh-kept" });
    expect(after.refreshTokenEnc).toBe(before.refreshTokenEnc);
    expect(after.grantedScopes).toEqual(scopes);
    expect(after.accessTokenExpiresAt?.getTime()).toBeGreaterThan(Date.now() + 50 * 60_000);
  });

  it("invalid grant: every token column cleared, the granted scopes kept as a record", async () => {
    const box = await connected(await createOwner());
    const granted = (await readMailbox(box.id)).grantedScopes;
    expect(await revokeToken(beds.demo.provider, box.refreshToken, "refresh_token")).toMatchObject({
      ok: true,
    });
    await expireAccessToken(box.id);

    await expect(getAccessToken(box.id)).rejects.toBeInstanceOf(MailboxNeedsReconnectError);
    const row = await readMailbox(box.id);
    expect(row.status).toBe("needs_reconnect");
    expectCleared(row);
    expect(row.grantedScopes).toEqual(granted);
  });

  it("refresh without the mail scope: the narrowed grant sealed and kept, so revoke still ends it", async () => {
    const owner = await createOwner();
    const box = await connected(owner);
    await expireAccessToken(box.id);
    beds.demo.proxy.refreshScope = "openid offline_access";
    try {
      await expect(getAccessToken(box.id)).rejects.toBeInstanceOf(MailboxNeedsReconnectError);
    } finally {
      beds.demo.proxy.refreshScope = null;
    }
    const row = await readMailbox(box.id);
    expect(row.status).toBe("needs_reconnect");
    expect(row.grantedScopes).toEqual(["openid", "offline_access"]);
    const rotated = openMailboxToken(box.id, "refresh_token", row.refreshTokenEnc ?? "");
    const narrowed = openMailboxToken(box.id, "access_token", row.accessTokenEnc ?? "");
    expectSealed(row, { accessToken: narrowed, refreshToken: rotated });
    expect(JSON.stringify(row)).not.toContain(box.refreshToken);

    await revokeMailbox({
      ctx: memberContext(owner.orgId, owner.user, "owner", REQUEST),
      mailboxId: box.id,
    });
    expect(await beds.demo.introspect(rotated)).toMatchObject({ active: false });
  });

  it("an SMTP refusal of a fresh token flags the mailbox but leaves its grant to the refresh", async () => {
    const box = await connected(await createOwner());
    const before = await readMailbox(box.id);
    await markMailboxUnusable(box.id, {
      status: "needs_reconnect",
      code: "535",
      cause: "The provider refused the token.",
    });
    const after = await readMailbox(box.id);
    expect(after.status).toBe("needs_reconnect");
    expect(tokenColumns(after)).toEqual(tokenColumns(before));
  });

  it("revoke: every token column cleared, and the provider no longer honours the tokens", async () => {
    const owner = await createOwner();
    const box = await connected(owner);
    const result = await revokeMailbox({
      ctx: memberContext(owner.orgId, owner.user, "owner", REQUEST),
      mailboxId: box.id,
    });
    expect(result.providerResult).toBe("revoked");
    const row = await readMailbox(box.id);
    expect(row.status).toBe("revoked");
    expectCleared(row);
    expect(await beds.demo.introspect(box.refreshToken)).toMatchObject({ active: false });
  });
});
