import "server-only";
import { and, eq, inArray, isNull, lt, or, sql } from "drizzle-orm";
import type { DbOrTx } from "@/db";
import { preparedOnce } from "@/db/prepared";
import { apiKeys, mailboxes, users } from "@/db/schema";
import { FIRST_PAGE, type PageRequest } from "@/lib/paging";
import { type PageKeys, pageKeyColumns, readKeysetPage } from "./paging";

// API keys. The secret's SHA-256 is selected only by the function whose name says "hash";
// every other read leaves it out.

const publicColumns = {
  id: apiKeys.id,
  orgId: apiKeys.orgId,
  name: apiKeys.name,
  prefix: apiKeys.prefix,
  allowedMailboxIds: apiKeys.allowedMailboxIds,
  createdBy: apiKeys.createdBy,
  createdAt: apiKeys.createdAt,
  lastUsedAt: apiKeys.lastUsedAt,
  revokedAt: apiKeys.revokedAt,
  expiresAt: apiKeys.expiresAt,
};

export type ApiKeySummary = {
  id: string;
  orgId: string;
  name: string;
  prefix: string;
  allowedMailboxIds: string[] | null;
  createdBy: string | null;
  createdAt: Date;
  lastUsedAt: Date | null;
  revokedAt: Date | null;
  expiresAt: Date | null;
};

export async function insertApiKey({
  db,
  values,
}: {
  db: DbOrTx;
  values: {
    id: string;
    orgId: string;
    name: string;
    prefix: string;
    secretHash: string;
    allowedMailboxIds: string[] | null;
    createdBy: string | null;
    expiresAt: Date | null;
  };
}): Promise<ApiKeySummary> {
  const [row] = await db.insert(apiKeys).values(values).returning(publicColumns);
  if (!row) throw new Error("api key insert returned nothing");
  return row;
}

/** Bearer verification only: the one read that includes the hash. */
export async function getApiKeyHashByPrefix({ db, prefix }: { db: DbOrTx; prefix: string }) {
  const [row] = await preparedOnce(db, "api_key_by_prefix", (handle, name) =>
    handle
      .select({ ...publicColumns, secretHash: apiKeys.secretHash })
      .from(apiKeys)
      .where(eq(apiKeys.prefix, sql.placeholder("prefix")))
      .limit(1)
      .prepare(name),
  ).execute({ prefix });
  return row ?? null;
}

export async function getApiKeyForOrg({
  db,
  orgId,
  keyId,
}: {
  db: DbOrTx;
  orgId: string;
  keyId: string;
}): Promise<ApiKeySummary | null> {
  const [row] = await db
    .select(publicColumns)
    .from(apiKeys)
    .where(and(eq(apiKeys.orgId, orgId), eq(apiKeys.id, keyId)))
    .limit(1);
  return row ?? null;
}

const apiKeyPageKeys: PageKeys = { at: apiKeys.createdAt, id: apiKeys.id };

/** One page of the organisation's keys, newest first (api_keys_org_created_idx). */
export async function listApiKeys({
  db,
  orgId,
  page = FIRST_PAGE,
}: {
  db: DbOrTx;
  orgId: string;
  page?: PageRequest;
}) {
  return readKeysetPage({
    keys: apiKeyPageKeys,
    request: page,
    read: (position, order, limit) =>
      db
        .select({
          ...publicColumns,
          createdByEmail: users.email,
          ...pageKeyColumns(apiKeyPageKeys),
        })
        .from(apiKeys)
        .leftJoin(users, eq(users.id, apiKeys.createdBy))
        .where(and(eq(apiKeys.orgId, orgId), position))
        .orderBy(...order)
        .limit(limit),
  });
}

/** Null when the key is not this organisation's or already revoked. */
export async function revokeApiKeyRow({
  db,
  orgId,
  keyId,
  now,
}: {
  db: DbOrTx;
  orgId: string;
  keyId: string;
  now: Date;
}) {
  const [row] = await db
    .update(apiKeys)
    .set({ revokedAt: now })
    .where(and(eq(apiKeys.orgId, orgId), eq(apiKeys.id, keyId), isNull(apiKeys.revokedAt)))
    .returning(publicColumns);
  return row ?? null;
}

/** Revokes every key a person created in the organisation (they leave it); the revoked rows. */
export async function revokeApiKeysCreatedBy({
  db,
  orgId,
  userId,
  now,
}: {
  db: DbOrTx;
  orgId: string;
  userId: string;
  now: Date;
}) {
  return db
    .update(apiKeys)
    .set({ revokedAt: now })
    .where(and(eq(apiKeys.orgId, orgId), eq(apiKeys.createdBy, userId), isNull(apiKeys.revokedAt)))
    .returning(publicColumns);
}

export async function setApiKeyMailboxes({
  db,
  orgId,
  keyId,
  allowedMailboxIds,
}: {
  db: DbOrTx;
  orgId: string;
  keyId: string;
  allowedMailboxIds: string[] | null;
}) {
  const [row] = await db
    .update(apiKeys)
    .set({ allowedMailboxIds })
    .where(and(eq(apiKeys.orgId, orgId), eq(apiKeys.id, keyId), isNull(apiKeys.revokedAt)))
    .returning(publicColumns);
  return row ?? null;
}

/** Written at most once per `olderThan` per key, so a busy key does not write on every send. */
export async function touchApiKeyLastUsed({
  db,
  keyId,
  now,
  olderThan,
}: {
  db: DbOrTx;
  keyId: string;
  now: Date;
  olderThan: Date;
}) {
  await db
    .update(apiKeys)
    .set({ lastUsedAt: now })
    .where(
      and(eq(apiKeys.id, keyId), or(isNull(apiKeys.lastUsedAt), lt(apiKeys.lastUsedAt, olderThan))),
    );
}

/** Which of these ids are mailboxes of the organisation (restricting a key to others is refused). */
export async function listOrgMailboxIds({
  db,
  orgId,
  mailboxIds,
}: {
  db: DbOrTx;
  orgId: string;
  mailboxIds: string[];
}) {
  if (mailboxIds.length === 0) return [];
  const rows = await db
    .select({ id: mailboxes.id })
    .from(mailboxes)
    .where(and(eq(mailboxes.orgId, orgId), inArray(mailboxes.id, mailboxIds)));
  return rows.map((row) => row.id);
}
