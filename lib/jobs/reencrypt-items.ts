import "server-only";
import { eq, sql } from "drizzle-orm";
import type { DbOrTx } from "@/db";
import { jobItems } from "@/db/schema";
import { WEBHOOK_ITEM_PREFIX } from "@/lib/webhooks/reencrypt";

// The re-encryption job's items: a mailbox's is its bare id; every other kind's id starts with
// its prefix (webhook endpoints' signing secrets, queued messages' bodies, PKCE verifiers).

export const MESSAGE_ITEM_PREFIX = "message:";
export const TRANSACTION_ITEM_PREFIX = "oauth:";

// Up to and with the first colon; '' for a mailbox.
const PREFIX = sql<string>`case when position(':' in ${jobItems.itemId}) > 0 then split_part(${jobItems.itemId}, ':', 1) || ':' else '' end`;

export type ReencryptionCounts = {
  /** Per kind of item: rows whose cells are under the current key now (rewritten or already). */
  mailboxes: number;
  webhookEndpoints: number;
  messages: number;
  transactions: number;
  /** Of those, the rows this job rewrote. */
  reencrypted: number;
  /** Rows with a cell no key of the keyring opens. */
  unreadable: number;
  /** Rows whose re-encryption failed (an error, every attempt). */
  failed: number;
  /** Rows not finished yet. */
  pending: number;
};

const COUNT_FIELD: Record<string, "webhookEndpoints" | "messages" | "transactions"> = {
  [WEBHOOK_ITEM_PREFIX]: "webhookEndpoints",
  [MESSAGE_ITEM_PREFIX]: "messages",
  [TRANSACTION_ITEM_PREFIX]: "transactions",
};

/**
 * What a re-encryption job covered, per kind of item: a job's `done` counts every item (webhook
 * secrets, queued bodies and PKCE verifiers too) and its `failed` every result that is no success.
 */
export async function countReencryptionItems(
  db: DbOrTx,
  jobId: string,
): Promise<ReencryptionCounts> {
  const rows = await db
    .select({
      prefix: PREFIX,
      state: jobItems.state,
      result: jobItems.result,
      count: sql<number>`count(*)::int`,
    })
    .from(jobItems)
    .where(eq(jobItems.jobId, jobId))
    .groupBy(sql`1`, jobItems.state, jobItems.result);
  const counts: ReencryptionCounts = {
    mailboxes: 0,
    webhookEndpoints: 0,
    messages: 0,
    transactions: 0,
    reencrypted: 0,
    unreadable: 0,
    failed: 0,
    pending: 0,
  };
  for (const row of rows) {
    const n = Number(row.count);
    if (row.state !== "finished") counts.pending += n;
    else if (row.result === "reencrypted" || row.result === "unchanged") {
      counts[COUNT_FIELD[row.prefix] ?? "mailboxes"] += n;
      if (row.result === "reencrypted") counts.reencrypted += n;
    } else if (row.result === "unreadable") counts.unreadable += n;
    else counts.failed += n;
  }
  return counts;
}

/** How many of a job's items are mailboxes (their tokens), and how many are other sealed cells. */
export async function countReencryptionKinds(db: DbOrTx, jobId: string) {
  const [row] = await db
    .select({
      mailboxes: sql<number>`count(*) filter (where ${PREFIX} = '')::int`,
      others: sql<number>`count(*) filter (where ${PREFIX} <> '')::int`,
    })
    .from(jobItems)
    .where(eq(jobItems.jobId, jobId));
  return { mailboxes: Number(row?.mailboxes ?? 0), others: Number(row?.others ?? 0) };
}
