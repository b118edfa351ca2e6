import "server-only";
import { and, eq, inArray, sql } from "drizzle-orm";
import type { DbOrTx } from "@/db";
import { preparedOnce } from "@/db/prepared";
import { switches } from "@/db/schema";

// Incident switches: one row per (kind, scope) while the switch is on; off is no row.
// scope_key is "global" or the organisation's id.

export const GLOBAL_SWITCH_SCOPE = "global";

/** A switch that is on, as the send path reads it (`setAt` as JSON text where it comes as JSON). */
export type SwitchRow = { scopeKey: string; reason: string; setAt: Date | string };

const switchColumns = {
  kind: switches.kind,
  scopeKey: switches.scopeKey,
  reason: switches.reason,
  setAt: switches.setAt,
};

/**
 * The switches of this kind that are on globally or for the organisation. A send reads the
 * pause with its mailbox lookup instead (db/queries/mailboxes.ts), and this only without one.
 */
export async function listSwitchesForOrg({
  db,
  kind,
  orgId,
}: {
  db: DbOrTx;
  kind: string;
  orgId: string;
}) {
  return preparedOnce(db, "switches_for_org", (handle, name) =>
    handle
      .select(switchColumns)
      .from(switches)
      .where(
        and(
          eq(switches.kind, sql.placeholder("kind")),
          inArray(switches.scopeKey, [GLOBAL_SWITCH_SCOPE, sql.placeholder("orgId")]),
        ),
      )
      .prepare(name),
  ).execute({ kind, orgId });
}

/** Null when the switch was already on (the first reason and author are kept). */
export async function insertSwitch({
  db,
  kind,
  scopeKey,
  orgId,
  reason,
  setBy,
}: {
  db: DbOrTx;
  kind: string;
  scopeKey: string;
  orgId: string | null;
  reason: string;
  setBy: string | null;
}) {
  const [row] = await db
    .insert(switches)
    .values({ kind, scopeKey, orgId, reason, setBy })
    .onConflictDoNothing({ target: [switches.kind, switches.scopeKey] })
    .returning({ id: switches.id });
  return row ?? null;
}

export async function deleteSwitch({
  db,
  kind,
  scopeKey,
}: {
  db: DbOrTx;
  kind: string;
  scopeKey: string;
}) {
  const [row] = await db
    .delete(switches)
    .where(and(eq(switches.kind, kind), eq(switches.scopeKey, scopeKey)))
    .returning({ id: switches.id, reason: switches.reason });
  return row ?? null;
}

/** Every switch that is on for these scopes (the banner shows them all). */
export async function listActiveSwitches({ db, scopeKeys }: { db: DbOrTx; scopeKeys: string[] }) {
  return db.select(switchColumns).from(switches).where(inArray(switches.scopeKey, scopeKeys));
}
