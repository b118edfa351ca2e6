import "server-only";
import { and, eq, isNotNull, or } from "drizzle-orm";
import type { Database } from "@/db";
import { mailboxes, oauthTransactions } from "@/db/schema";
import type { Actor } from "@/lib/audit/events";
import { writeAuditEvent } from "@/lib/audit/write";
import { needsReencryption, reencryptField } from "./envelope";
import type { Keyring } from "./keyring";

export type RotationProgress = { mailboxes: number; transactions: number; remaining: boolean };

function rotateCell(
  keyring: Keyring,
  value: string | null,
  table: string,
  column: string,
  rowId: string,
) {
  if (!value || !needsReencryption(keyring, value)) return value;
  return reencryptField(keyring, value, { table, column, rowId });
}

/**
 * Re-encrypts every token cell under the keyring's current key, one row per transaction with the
 * row locked (a token refresh may be writing it at the same moment). Resumable: it picks rows by
 * key id, so a run that stops part-way is finished by running it again.
 */
export async function reencryptTokens(
  db: Database,
  keyring: Keyring,
  options: { actor: Actor; maxRows?: number },
): Promise<RotationProgress> {
  const current = keyring.current.id;
  const budget = options.maxRows ?? Number.POSITIVE_INFINITY;
  let rotatedMailboxes = 0;
  let rotatedTransactions = 0;

  const mailboxesWithTokens = await db
    .select({ id: mailboxes.id })
    .from(mailboxes)
    .where(or(isNotNull(mailboxes.accessTokenEnc), isNotNull(mailboxes.refreshTokenEnc)));
  for (const { id } of mailboxesWithTokens) {
    if (rotatedMailboxes + rotatedTransactions >= budget) break;
    const changed = await db.transaction(async (tx) => {
      const [row] = await tx.select().from(mailboxes).where(eq(mailboxes.id, id)).for("update");
      if (!row) return false;
      const access = rotateCell(keyring, row.accessTokenEnc, "mailboxes", "access_token", id);
      const refresh = rotateCell(keyring, row.refreshTokenEnc, "mailboxes", "refresh_token", id);
      if (
        access === row.accessTokenEnc &&
        refresh === row.refreshTokenEnc &&
        row.keyId === current
      ) {
        return false;
      }
      await tx
        .update(mailboxes)
        .set({ accessTokenEnc: access, refreshTokenEnc: refresh, keyId: current })
        .where(eq(mailboxes.id, id));
      return true;
    });
    if (changed) rotatedMailboxes++;
  }

  const transactions = await db
    .select({ id: oauthTransactions.id, value: oauthTransactions.codeVerifierEnc })
    .from(oauthTransactions);
  for (const { id, value } of transactions) {
    if (rotatedMailboxes + rotatedTransactions >= budget) break;
    const next = rotateCell(keyring, value, "oauth_transactions", "code_verifier", id);
    if (next === value || !next) continue;
    await db
      .update(oauthTransactions)
      .set({ codeVerifierEnc: next })
      .where(and(eq(oauthTransactions.id, id), eq(oauthTransactions.codeVerifierEnc, value)));
    rotatedTransactions++;
  }

  const remaining = await hasStaleCells(db, keyring);
  await writeAuditEvent(db, {
    orgId: null,
    actor: options.actor,
    action: "keys.rotated",
    outcome: remaining ? "failure" : "success",
    metadata: {
      keyId: current,
      mailboxes: rotatedMailboxes,
      transactions: rotatedTransactions,
      remaining,
    },
  });
  return { mailboxes: rotatedMailboxes, transactions: rotatedTransactions, remaining };
}

async function hasStaleCells(db: Database, keyring: Keyring): Promise<boolean> {
  const rows = await db
    .select({ a: mailboxes.accessTokenEnc, r: mailboxes.refreshTokenEnc })
    .from(mailboxes);
  const verifiers = await db
    .select({ v: oauthTransactions.codeVerifierEnc })
    .from(oauthTransactions);
  return [...rows.flatMap((r) => [r.a, r.r]), ...verifiers.map((t) => t.v)].some(
    (value) => value !== null && needsReencryption(keyring, value),
  );
}
