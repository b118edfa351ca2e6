import "server-only";
import { createHash, randomBytes, randomUUID, timingSafeEqual } from "node:crypto";
import { getDb } from "@/db";
import {
  type ApiKeySummary,
  getApiKeyHashByPrefix,
  insertApiKey,
  listApiKeys,
  listOrgMailboxIds,
  revokeApiKeyRow,
  setApiKeyMailboxes,
  touchApiKeyLastUsed,
} from "@/db/queries/api-keys";
import { auditRefusedApiKey } from "@/lib/audit/refusals";
import { writeAuditEvent } from "@/lib/audit/write";
import type { CallContext } from "@/lib/auth/context";
import { requestInfoFrom } from "@/lib/auth/request";
import { hasPermission } from "@/lib/auth/roles";
import { UserFacingError } from "@/lib/errors";
import { queueNotification } from "@/lib/notifications";
import type { PageRequest } from "@/lib/paging";
import { enforceRateLimit } from "@/lib/ratelimit/runtime";
import { isKeyUsable } from "./api-key-state";

// API keys for the send route (table api_keys in db/schema.ts). The secret is shown once; the database
// keeps its SHA-256 only, so a leaked table cannot send mail. A plain hash (no KDF) is right
// here: the secret is 256 random bits, not a password anyone could guess.

export type { ApiKeySummary } from "@/db/queries/api-keys";

/** What the send chokepoint needs to know about a verified bearer. */
export type VerifiedApiKey = {
  id: string;
  orgId: string;
  name: string;
  allowedMailboxIds: string[] | null;
};

/** Bad input for a key operation (a name, a mailbox of another organisation). */
export class ApiKeyInputError extends UserFacingError {
  constructor(field: string, message: string) {
    super(message, { field });
    this.name = "ApiKeyInputError";
  }
}

export class ApiKeyNotFoundError extends UserFacingError {
  constructor() {
    super("No such active API key in this organisation.");
    this.name = "ApiKeyNotFoundError";
  }
}

export class ApiKeyForbiddenError extends Error {
  constructor() {
    super("Only owners and admins manage API keys.");
    this.name = "ApiKeyForbiddenError";
  }
}

const SCHEME = "mwk";
const PREFIX_BYTES = 6;
const SECRET_BYTES = 32;
// mwk_<12 hex>_<43 base64url>: the hex prefix has no "_", so the first two split the token.
const TOKEN_PATTERN = /^mwk_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$/;
const MAX_NAME_LENGTH = 100;
const LAST_USED_EVERY_MS = 60_000;

type RememberedKey = NonNullable<Awaited<ReturnType<typeof getApiKeyHashByPrefix>>>;
const holder = globalThis as typeof globalThis & {
  __mailwardenKeyTouched?: Map<string, number>;
  __mailwardenKeysRemembered?: Map<string, { row: RememberedKey; at: number }>;
};
// A busy key would otherwise write last_used_at on every send; once a minute is plenty.
holder.__mailwardenKeyTouched ??= new Map();
const lastTouched = holder.__mailwardenKeyTouched;

// The send route may skip reading a key it verified in the last REMEMBER_MS: the send
// chokepoint's mailbox lookup reads the key's revocation, expiry and mailboxes in its own
// statement (lib/mail/checks.ts), so one statement per send serves both. Only keys whose
// secret matched are remembered (by prefix, with the secret's hash, compared every time), so
// a stranger cannot fill the map; it is bounded anyway.
const REMEMBER_MS = 30_000;
const REMEMBER_MAX = 10_000;
holder.__mailwardenKeysRemembered ??= new Map();
const remembered = holder.__mailwardenKeysRemembered;

function keyRow(prefix: string, remember: boolean): Promise<RememberedKey | null> | RememberedKey {
  const known = remember ? remembered.get(prefix) : undefined;
  if (known && Date.now() - known.at < REMEMBER_MS) return known.row;
  return getDb().then((db) => getApiKeyHashByPrefix({ db, prefix }));
}

function rememberKey(row: RememberedKey): void {
  const known = remembered.get(row.prefix);
  if (known && Date.now() - known.at < REMEMBER_MS) return;
  remembered.delete(row.prefix);
  if (remembered.size >= REMEMBER_MAX) {
    const oldest = remembered.keys().next().value;
    if (oldest !== undefined) remembered.delete(oldest);
  }
  remembered.set(row.prefix, { row, at: Date.now() });
}

/** This process forgets a key it remembered (after a revocation or a change of mailboxes). */
function forgetKey(prefix: string): void {
  remembered.delete(prefix);
}

export function hashApiKeySecret(secret: string): string {
  return createHash("sha256").update(secret, "utf8").digest("hex");
}

function checkName(name: string): string {
  const trimmed = name.trim();
  if (trimmed === "" || trimmed.length > MAX_NAME_LENGTH || /\p{Cc}/u.test(trimmed)) {
    throw new ApiKeyInputError(
      "name",
      `Give the key a name of 1 to ${MAX_NAME_LENGTH} characters, without control characters.`,
    );
  }
  return trimmed;
}

function assertManager(ctx: CallContext): void {
  if (
    ctx.actor.type !== "user" ||
    ctx.role === null ||
    !hasPermission(ctx.role, "manageMailboxes")
  ) {
    throw new ApiKeyForbiddenError();
  }
}

async function checkMailboxes(
  orgId: string,
  allowedMailboxIds: string[] | null | undefined,
): Promise<string[] | null> {
  if (allowedMailboxIds === null || allowedMailboxIds === undefined) return null;
  const wanted = [...new Set(allowedMailboxIds)];
  if (wanted.length === 0) {
    throw new ApiKeyInputError("allowedMailboxIds", "Choose at least one mailbox, or allow all.");
  }
  const found = await listOrgMailboxIds({ db: await getDb(), orgId, mailboxIds: wanted });
  if (found.length !== wanted.length) {
    throw new ApiKeyInputError(
      "allowedMailboxIds",
      "Some of the chosen mailboxes are not mailboxes of this organisation.",
    );
  }
  return wanted.sort();
}

/** Creates a key; `token` is the only time the secret exists outside the caller's hands. */
export async function createApiKey({
  ctx,
  name,
  allowedMailboxIds,
  expiresAt = null,
}: {
  ctx: CallContext;
  name: string;
  allowedMailboxIds?: string[] | null;
  /** After this the key is refused like a revoked one; null never expires. */
  expiresAt?: Date | null;
}): Promise<{ key: ApiKeySummary; token: string }> {
  assertManager(ctx);
  const { orgId, actor, request } = ctx;
  const keyName = checkName(name);
  await enforceRateLimit("consoleCreate", [`user:${actor.id}`, `org:${orgId}`]);
  if (expiresAt !== null && !(expiresAt.getTime() > Date.now())) {
    throw new ApiKeyInputError("expiresAt", "Choose an expiry date in the future, or none.");
  }
  const allowed = await checkMailboxes(orgId, allowedMailboxIds);
  const prefix = randomBytes(PREFIX_BYTES).toString("hex");
  const secret = randomBytes(SECRET_BYTES).toString("base64url");
  const db = await getDb();
  const key = await db.transaction(async (tx) => {
    const row = await insertApiKey({
      db: tx,
      values: {
        id: randomUUID(),
        orgId,
        name: keyName,
        prefix,
        secretHash: hashApiKeySecret(secret),
        allowedMailboxIds: allowed,
        createdBy: actor.id,
        expiresAt,
      },
    });
    await writeAuditEvent(tx, {
      orgId,
      actor,
      action: "api_key.created",
      target: { type: "api_key", id: row.id },
      outcome: "success",
      request: request,
      metadata: {
        name: keyName,
        prefix,
        allowedMailboxIds: allowed,
        expiresAt: expiresAt?.toISOString() ?? null,
      },
    });
    await queueNotification(tx, {
      orgId,
      kind: "api_key_created",
      title: `API key created: ${keyName}`,
      body: `${actor.label ?? "A member"} created the API key "${keyName}" (mwk_${prefix}_…). If nobody you know did, revoke it on the API keys page.`,
    });
    return row;
  });
  return { key, token: `${SCHEME}_${prefix}_${secret}` };
}

/** `null` lets the key use every mailbox of the organisation. */
export async function restrictApiKey({
  ctx,
  keyId,
  allowedMailboxIds,
}: {
  ctx: CallContext;
  keyId: string;
  allowedMailboxIds: string[] | null;
}): Promise<ApiKeySummary> {
  assertManager(ctx);
  const { orgId, actor, request } = ctx;
  const allowed = await checkMailboxes(orgId, allowedMailboxIds);
  const db = await getDb();
  return db.transaction(async (tx) => {
    const row = await setApiKeyMailboxes({ db: tx, orgId, keyId, allowedMailboxIds: allowed });
    if (!row) throw new ApiKeyNotFoundError();
    forgetKey(row.prefix);
    await writeAuditEvent(tx, {
      orgId,
      actor,
      action: "api_key.restricted",
      target: { type: "api_key", id: keyId },
      outcome: "success",
      request: request,
      metadata: { prefix: row.prefix, allowedMailboxIds: allowed },
    });
    return row;
  });
}

export async function revokeApiKey({
  ctx,
  keyId,
}: {
  ctx: CallContext;
  keyId: string;
}): Promise<ApiKeySummary> {
  assertManager(ctx);
  const { orgId, actor, request } = ctx;
  const db = await getDb();
  return db.transaction(async (tx) => {
    const row = await revokeApiKeyRow({ db: tx, orgId, keyId, now: new Date() });
    if (!row) throw new ApiKeyNotFoundError();
    forgetKey(row.prefix);
    await writeAuditEvent(tx, {
      orgId,
      actor,
      action: "api_key.revoked",
      target: { type: "api_key", id: keyId },
      outcome: "success",
      request: request,
      metadata: { name: row.name, prefix: row.prefix },
    });
    await queueNotification(tx, {
      orgId,
      kind: "api_key_revoked",
      title: `API key revoked: ${row.name}`,
      body: `${actor.label ?? "A member"} revoked the API key "${row.name}" (mwk_${row.prefix}_…). Requests with it are refused from now on.`,
    });
    return row;
  });
}

export async function listApiKeysForOrg({ orgId, page }: { orgId: string; page?: PageRequest }) {
  return listApiKeys({ db: await getDb(), orgId, page });
}

/**
 * The key a bearer token stands for, or null (malformed, unknown, wrong secret, revoked).
 * The hashes are compared in constant time; the prefix lookup itself reveals nothing secret.
 */
export async function verifyApiKey(
  token: string,
  { remember = false }: { remember?: boolean } = {},
): Promise<VerifiedApiKey | null> {
  const match = TOKEN_PATTERN.exec(token);
  if (!match) return null;
  const [, prefix = "", secret = ""] = match;
  const row = await keyRow(prefix, remember);
  if (!row || !isKeyUsable(row)) {
    forgetKey(prefix);
    return null;
  }
  const given = Buffer.from(hashApiKeySecret(secret), "hex");
  const stored = Buffer.from(row.secretHash, "hex");
  if (given.length !== stored.length || !timingSafeEqual(given, stored)) return null;
  if (remember) rememberKey(row);

  const now = Date.now();
  if (now - (lastTouched.get(row.id) ?? 0) > LAST_USED_EVERY_MS) {
    lastTouched.set(row.id, now);
    await touchApiKeyLastUsed({
      db: await getDb(),
      keyId: row.id,
      now: new Date(now),
      olderThan: new Date(now - LAST_USED_EVERY_MS),
    });
  }
  return {
    id: row.id,
    orgId: row.orgId,
    name: row.name,
    allowedMailboxIds: row.allowedMailboxIds,
  };
}

/** The API key of `Authorization: Bearer <key>`, or null. */
function bearerOf(request: Request): string | null {
  const header = request.headers.get("authorization");
  const match = header ? /^Bearer[ ]+(\S+)\s*$/i.exec(header) : null;
  return match?.[1] ?? null;
}

/**
 * The caller's context for a request's bearer token: the API-key counterpart of the action
 * wrapper's. Null when there is no usable key; the refusal is audited (sampled) first.
 */
export async function apiKeyContext(
  request: Request,
  options: { remember?: boolean } = {},
): Promise<CallContext | null> {
  const token = bearerOf(request);
  const info = requestInfoFrom(request.headers);
  const key = token ? await verifyApiKey(token, options) : null;
  if (!key) {
    await auditRefusedApiKey(token, info);
    return null;
  }
  return {
    orgId: key.orgId,
    actor: { type: "api_key", id: key.id, label: key.name },
    role: null,
    request: info,
    allowedMailboxIds: key.allowedMailboxIds,
  };
}
