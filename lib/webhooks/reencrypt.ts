import "server-only";
import { eq } from "drizzle-orm";
import type { Database, DbOrTx } from "@/db";
import { webhookEndpoints } from "@/db/schema";
import { rotateCell } from "@/lib/crypto/envelope";
import type { Keyring } from "@/lib/crypto/keyring";

// Webhook signing secrets are sealed under the token keyring too, so a key rotation
// (lib/jobs/reencrypt.ts: `npm run keys:rotate` and the Incidents page's job) re-encrypts them
// with the tokens, and the count of cells per key includes them.

/** Job item ids of webhook endpoints carry this prefix (mailbox items are bare ids). */
export const WEBHOOK_ITEM_PREFIX = "webhook:";

/** Re-encrypts one endpoint's secret cells with the row locked; false when nothing changed. */
export async function reencryptWebhookEndpointRow(
  db: Database,
  keyring: Keyring,
  id: string,
  unreadable: string[],
): Promise<boolean> {
  return db.transaction(async (tx) => {
    const [row] = await tx
      .select({ secret: webhookEndpoints.secret, previous: webhookEndpoints.previousSecret })
      .from(webhookEndpoints)
      .where(eq(webhookEndpoints.id, id))
      .for("update");
    if (!row) return false;
    const rotate = (column: string, value: string | null) =>
      rotateCell(keyring, { value, table: "webhook_endpoints", column, rowId: id }, unreadable);
    const secret = rotate("secret", row.secret) ?? row.secret;
    const previous = rotate("previous_secret", row.previous);
    if (secret === row.secret && previous === row.previous) return false;
    await tx
      .update(webhookEndpoints)
      .set({ secret, previousSecret: previous })
      .where(eq(webhookEndpoints.id, id));
    return true;
  });
}

export async function listWebhookEndpointIds(db: DbOrTx): Promise<string[]> {
  const rows = await db.select({ id: webhookEndpoints.id }).from(webhookEndpoints);
  return rows.map((r) => r.id);
}

/** Every sealed webhook secret, for the per-key count. */
export async function webhookSecretCells(db: DbOrTx): Promise<string[]> {
  const rows = await db
    .select({ secret: webhookEndpoints.secret, previous: webhookEndpoints.previousSecret })
    .from(webhookEndpoints);
  return rows.flatMap((r) => (r.previous ? [r.secret, r.previous] : [r.secret]));
}
