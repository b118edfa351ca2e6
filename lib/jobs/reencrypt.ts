import "server-only";
import { and, eq, isNotNull, or } from "drizzle-orm";
import type { Database } from "@/db";
import { mailboxes, oauthTransactions } from "@/db/schema";
import type { Actor } from "@/lib/audit/events";
import { writeAuditEvent } from "@/lib/audit/write";
import { DecryptionError, needsReencryption, reencryptField } from "@/lib/crypto/envelope";
import type { Keyring } from "@/lib/crypto/keyring";

export type RotationResult = {
  mailboxes: number;
  transactions: number;
  /** Cells that no key of the keyring can open (tampered, or the key was dropped too early). */
  unreadable: string[];
  /** The run stopped at maxRows: run it again to finish. */
  remaining: boolean;
};

type Cell = { value: string | null; table: string; column: string; rowId: string };

function rotateCell(keyring: Keyring, cell: Cell, unreadable: string[]): string | null {
  if (!cell.value || !needsReencryption(keyring, cell.value)) return cell.value;
  try {
    return reencryptField(keyring, cell.value, cell);
  } catch (error) {
    if (!(error instanceof DecryptionError)) throw error;
    unreadable.push(`${cell.table}.${cell.column}:${cell.rowId}`);
    return cell.value;
  }
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
  let rotatedMailboxes = 0;
  let rotatedTransactions = 0;
  let remaining = false;

  const withTokens = await db
    .select({ id: mailboxes.id })
    .from(mailboxes)
    .where(or(isNotNull(mailboxes.accessTokenEnc), isNotNull(mailboxes.refreshTokenEnc)));
  for (const { id } of withTokens) {
    if (rotatedMailboxes + rotatedTransactions >= budget) {
      remaining = true;
      break;
    }
    const changed = await db.transaction(async (tx) => {
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
    if (remaining || rotatedMailboxes + rotatedTransactions >= budget) {
      remaining = true;
      break;
    }
    const cell = { value, table: "oauth_transactions", column: "code_verifier", rowId: id };
    const next = rotateCell(keyring, cell, unreadable);
    if (next === value || !next) continue;
    await db
      .update(oauthTransactions)
      .set({ codeVerifierEnc: next })
      .where(and(eq(oauthTransactions.id, id), eq(oauthTransactions.codeVerifierEnc, value)));
    rotatedTransactions++;
  }

  await writeAuditEvent(db, {
    orgId: null,
    actor: options.actor,
    action: "keys.rotated",
    outcome: remaining || unreadable.length > 0 ? "failure" : "success",
    metadata: {
      keyId: current,
      mailboxes: rotatedMailboxes,
      transactions: rotatedTransactions,
      unreadable,
      remaining,
    },
  });
  return { mailboxes: rotatedMailboxes, transactions: rotatedTransactions, unreadable, remaining };
}
