import "server-only";
import { and, eq, isNotNull, or, sql } from "drizzle-orm";
import { type Database, type DbOrTx, getDb } from "@/db";
import { latestJob } from "@/db/queries/jobs";
import { mailboxes, messages, oauthTransactions } from "@/db/schema";
import type { Actor } from "@/lib/audit/events";
import { writeAuditEvent } from "@/lib/audit/write";
import type { CallContext } from "@/lib/auth/context";
import { keyIdOf, rotateCell } from "@/lib/crypto/envelope";
import type { Keyring } from "@/lib/crypto/keyring";
import { keyring as runtimeKeyring } from "@/lib/crypto/runtime";
import {
  listWebhookEndpointIds,
  reencryptWebhookEndpointRow,
  WEBHOOK_ITEM_PREFIX,
  webhookSecretCells,
} from "@/lib/webhooks/reencrypt";
import {
  countReencryptionItems,
  MESSAGE_ITEM_PREFIX,
  TRANSACTION_ITEM_PREFIX,
} from "./reencrypt-items";
import { createJob, describeError, registerJobHandler } from "./runner";

export type RotationResult = {
  mailboxes: number;
  /** Webhook endpoints whose signing secrets were re-encrypted. */
  webhookEndpoints: number;
  transactions: number;
  /** Queued messages' sealed bodies (lib/mail/queued.ts). */
  messages: number;
  /** Cells that no key of the keyring can open (tampered, or the key was dropped too early). */
  unreadable: string[];
  /** The run stopped at maxRows: run it again to finish. */
  remaining: boolean;
};

/** Re-encrypts one mailbox's token cells with the row locked; false when nothing changed. */
export async function reencryptMailboxRow(
  db: Database,
  keyring: Keyring,
  id: string,
  unreadable: string[],
): Promise<boolean> {
  return db.transaction(async (tx) => {
    const [row] = await tx.select().from(mailboxes).where(eq(mailboxes.id, id)).for("update");
    if (!row) return false;
    const cell = (column: string, value: string | null) => ({
      value,
      table: "mailboxes",
      column,
      rowId: id,
    });
    const access = rotateCell(keyring, cell("access_token", row.accessTokenEnc), unreadable);
    const refresh = rotateCell(keyring, cell("refresh_token", row.refreshTokenEnc), unreadable);
    if (access === row.accessTokenEnc && refresh === row.refreshTokenEnc) return false;
    await tx
      .update(mailboxes)
      .set({ accessTokenEnc: access, refreshTokenEnc: refresh, keyId: keyring.current.id })
      .where(eq(mailboxes.id, id));
    return true;
  });
}

// The sealed columns rotated one cell per row, besides mailbox tokens and webhook secrets
// (which lock their row: a refresh or a secret rotation may write it meanwhile).
const SINGLE_CELLS = {
  // Written back only if nobody changed it meanwhile: the attempt that sends it deletes it.
  body: {
    table: messages,
    id: messages.id,
    cell: messages.bodySealed,
    set: (next: string) => ({ bodySealed: next }),
    context: { table: "messages", column: "body_sealed" },
  },
  verifier: {
    table: oauthTransactions,
    id: oauthTransactions.id,
    cell: oauthTransactions.codeVerifierEnc,
    set: (next: string) => ({ codeVerifierEnc: next }),
    context: { table: "oauth_transactions", column: "code_verifier" },
  },
} as const;

/** Re-encrypts one such cell; false when nothing changed (or it is gone, or unreadable). */
async function reencryptSingleCell(
  kind: keyof typeof SINGLE_CELLS,
  db: DbOrTx,
  keyring: Keyring,
  id: string,
  unreadable: string[],
): Promise<boolean> {
  const c = SINGLE_CELLS[kind] as (typeof SINGLE_CELLS)["body"];
  const [row] = await db.select({ value: c.cell }).from(c.table).where(eq(c.id, id));
  const value = row?.value ?? null;
  const next = rotateCell(keyring, { value, ...c.context, rowId: id }, unreadable);
  if (!value || !next || next === value) return false;
  await db
    .update(c.table)
    .set(c.set(next))
    .where(and(eq(c.id, id), eq(c.cell, value)));
  return true;
}

export const reencryptQueuedBody = (
  db: DbOrTx,
  keyring: Keyring,
  id: string,
  unreadable: string[],
) => reencryptSingleCell("body", db, keyring, id, unreadable);
export const reencryptVerifier = (db: DbOrTx, keyring: Keyring, id: string, unreadable: string[]) =>
  reencryptSingleCell("verifier", db, keyring, id, unreadable);

/** Queued messages' ids whose body is sealed (kept until sent, QUEUE_DEADLINE_HOURS at most). */
async function sealedBodyIds(db: DbOrTx): Promise<string[]> {
  const rows = await db
    .select({ id: messages.id })
    .from(messages)
    .where(isNotNull(messages.bodySealed));
  return rows.map((r) => r.id);
}

async function transactionIds(db: DbOrTx): Promise<string[]> {
  const rows = await db.select({ id: oauthTransactions.id }).from(oauthTransactions);
  return rows.map((r) => r.id);
}

/**
 * Re-encrypts every token cell under the keyring's current key, one row per transaction with the
 * row locked (a token refresh may be writing it at the same moment). Resumable: cells already
 * under the current key are skipped, so a run that stopped part-way is finished by running it
 * again. A cell that cannot be opened is reported, never silently dropped.
 */
export async function reencryptTokens(
  db: Database,
  keyring: Keyring,
  options: { actor: Actor; maxRows?: number },
): Promise<RotationResult> {
  const current = keyring.current.id;
  const budget = options.maxRows ?? Number.POSITIVE_INFINITY;
  const unreadable: string[] = [];
  const counts = { mailboxes: 0, transactions: 0, messages: 0, webhookEndpoints: 0 };
  let remaining = false;

  // Re-encrypts each row with `step` (true when it changed something) until the budget of
  // changed rows, shared by every kind, is spent.
  async function each<T>(rows: T[], kind: keyof typeof counts, step: (row: T) => Promise<boolean>) {
    for (const row of rows) {
      const spent = Object.values(counts).reduce((sum, n) => sum + n, 0);
      if (remaining || spent >= budget) {
        remaining = true;
        return;
      }
      if (await step(row)) counts[kind]++;
    }
  }
  let failure: unknown = null;
  try {
    await each(await MAILBOX_ITEMS.ids(db), "mailboxes", (id) =>
      reencryptMailboxRow(db, keyring, id, unreadable),
    );
    await each(await transactionIds(db), "transactions", (id) =>
      reencryptVerifier(db, keyring, id, unreadable),
    );
    await each(await sealedBodyIds(db), "messages", (id) =>
      reencryptQueuedBody(db, keyring, id, unreadable),
    );
    await each(await listWebhookEndpointIds(db), "webhookEndpoints", (id) =>
      reencryptWebhookEndpointRow(db, keyring, id, unreadable),
    );
  } catch (error) {
    // Rows already rewritten stay rewritten: the event says how many, and that it is unfinished.
    failure = error;
    remaining = true;
  }
  const result = { ...counts, unreadable, remaining };
  // The database's own words, never the statement and its parameters (sealed cells).
  const message = failure === null ? null : describeError(failure);
  try {
    await writeAuditEvent(db, {
      orgId: null,
      actor: options.actor,
      action: "keys.rotated",
      outcome: remaining || unreadable.length > 0 ? "failure" : "success",
      metadata: { keyId: current, ...result, ...(message === null ? {} : { error: message }) },
    });
  } catch (auditError) {
    if (failure === null) throw auditError;
  }
  if (failure !== null) throw new RotationFailedError(message ?? "", result);
  return result;
}

/** A run that stopped on an error; `result` counts what it re-encrypted before. */
export class RotationFailedError extends Error {
  constructor(
    message: string,
    readonly result: RotationResult,
  ) {
    super(message);
    this.name = "RotationFailedError";
  }
}

/** What a run re-encrypted, every kind of cell named (what `npm run keys:rotate` prints). */
export function describeRotation(result: RotationResult): string {
  const n = (count: number, one: string, many: string) => `${count} ${count === 1 ? one : many}`;
  return [
    n(result.mailboxes, "mailbox", "mailboxes"),
    n(result.transactions, "pending connection", "pending connections"),
    n(result.messages, "queued message body", "queued message bodies"),
    n(result.webhookEndpoints, "webhook endpoint's secrets", "webhook endpoints' secrets"),
  ].join(", ");
}

// ---- The same re-encryption as a job, started from the incidents page ----

export const REENCRYPT = "reencrypt_tokens";

type ItemKind = {
  prefix: string;
  what: string;
  rotate: (db: Database, keyring: Keyring, id: string, unreadable: string[]) => Promise<boolean>;
  ids: (db: DbOrTx) => Promise<string[]>;
};

// Every sealed column has its items: a rotation started from the page leaves no cell under
// the old key (what `npm run keys:rotate` does in one run).
const MAILBOX_ITEMS: ItemKind = {
  prefix: "",
  what: "token",
  rotate: reencryptMailboxRow,
  ids: async (db) =>
    (
      await db
        .select({ id: mailboxes.id })
        .from(mailboxes)
        .where(or(isNotNull(mailboxes.accessTokenEnc), isNotNull(mailboxes.refreshTokenEnc)))
    ).map((r) => r.id),
};
const ITEM_KINDS: ItemKind[] = [
  {
    prefix: WEBHOOK_ITEM_PREFIX,
    what: "webhook secret",
    rotate: reencryptWebhookEndpointRow,
    ids: listWebhookEndpointIds,
  },
  {
    prefix: MESSAGE_ITEM_PREFIX,
    what: "queued message body",
    rotate: reencryptQueuedBody,
    ids: sealedBodyIds,
  },
  {
    prefix: TRANSACTION_ITEM_PREFIX,
    what: "PKCE verifier",
    rotate: reencryptVerifier,
    ids: transactionIds,
  },
];

registerJobHandler({
  kind: REENCRYPT,
  concurrency: 4,
  runItem: async (item) => {
    const unreadable: string[] = [];
    const kind = ITEM_KINDS.find((k) => item.itemId.startsWith(k.prefix)) ?? MAILBOX_ITEMS;
    const changed = await kind.rotate(
      await getDb(),
      runtimeKeyring(),
      item.itemId.slice(kind.prefix.length),
      unreadable,
    );
    if (unreadable.length > 0) {
      return { result: "unreadable", detail: `No key of the keyring opens this ${kind.what}.` };
    }
    return { result: changed ? "reencrypted" : "unchanged", detail: null };
  },
  onDone: async (job) => {
    const db = await getDb();
    await writeAuditEvent(db, {
      orgId: null,
      actor: job.createdBy
        ? { type: "user", id: job.createdBy, label: "re-encryption job" }
        : { type: "system", label: "re-encryption job" },
      action: "keys.rotated",
      target: { type: "job", id: job.id },
      outcome: job.failed > 0 ? "failure" : "success",
      metadata: {
        keyId: runtimeKeyring().current.id,
        ...(await countReencryptionItems(db, job.id)),
      },
    });
  },
});

/**
 * How many sealed cells (tokens, webhook secrets, queued bodies, PKCE verifiers) each key id holds: what the page shows
 * before and after a rotation.
 */
export async function countCellsByKey(
  db: DbOrTx,
): Promise<Array<{ keyId: string; cells: number }>> {
  const rows = await db
    .select({ access: mailboxes.accessTokenEnc, refresh: mailboxes.refreshTokenEnc })
    .from(mailboxes)
    .where(or(isNotNull(mailboxes.accessTokenEnc), isNotNull(mailboxes.refreshTokenEnc)));
  const counts = new Map<string, number>();
  // A queued body can be megabytes: only its key id is read, counted by the database. A body
  // whose envelope does not begin as one counts as unreadable.
  const bodies = await db
    .select({
      keyId: sql<string>`case when left(${messages.bodySealed}, 40) ~ '^v1\.[A-Za-z0-9_-]{1,32}\.' then split_part(left(${messages.bodySealed}, 40), '.', 2) else '(unreadable)' end`,
      cells: sql<number>`count(*)::int`,
    })
    .from(messages)
    .where(isNotNull(messages.bodySealed))
    .groupBy(sql`1`);
  for (const { keyId, cells } of bodies) counts.set(keyId, (counts.get(keyId) ?? 0) + cells);
  const verifiers = await db
    .select({ value: oauthTransactions.codeVerifierEnc })
    .from(oauthTransactions);
  const values = [
    ...rows.flatMap((r) => [r.access, r.refresh]),
    ...(await webhookSecretCells(db)),
    ...verifiers.map((r) => r.value),
  ];
  for (const value of values) {
    if (!value) continue;
    let id: string;
    try {
      id = keyIdOf(value);
    } catch {
      id = "(unreadable)";
    }
    counts.set(id, (counts.get(id) ?? 0) + 1);
  }
  return [...counts].map(([keyId, cells]) => ({ keyId, cells })).sort((a, b) => b.cells - a.cells);
}

/** Queues a re-encryption of every mailbox's tokens under the current key. */
export async function startReencryption({
  db,
  ctx,
}: {
  db: Database;
  /** Who starts it; the job itself belongs to no organisation. */
  ctx: Pick<CallContext, "actor" | "request">;
}) {
  const { actor, request } = ctx;
  return db.transaction(async (tx) => {
    // Two operators (or one double submit) would otherwise both find no job under way.
    await tx.execute(sql`select pg_advisory_xact_lock(hashtext(${`${REENCRYPT}:deployment`}))`);
    const previous = await latestJob({ db: tx, kind: REENCRYPT, orgId: null });
    if (previous && (previous.status === "queued" || previous.status === "running"))
      return previous;
    const items: Array<{ itemId: string; label: null }> = [];
    let mailboxCount = 0;
    for (const kind of [MAILBOX_ITEMS, ...ITEM_KINDS]) {
      const ids = await kind.ids(tx);
      if (kind === MAILBOX_ITEMS) mailboxCount = ids.length;
      for (const id of ids) items.push({ itemId: `${kind.prefix}${id}`, label: null });
    }
    const job = await createJob({
      db: tx,
      kind: REENCRYPT,
      orgId: null,
      createdBy: actor.type === "user" ? actor.id : null,
      reason: "rotate the token encryption key",
      items,
    });
    await writeAuditEvent(tx, {
      orgId: null,
      actor,
      action: "job.started",
      target: { type: "job", id: job.id },
      outcome: "success",
      request: request,
      metadata: { kind: REENCRYPT, mailboxes: mailboxCount, items: items.length },
    });
    return job;
  });
}
