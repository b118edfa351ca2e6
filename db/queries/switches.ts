import "server-only";
import { and, eq, inArray } from "drizzle-orm";
import type { DbOrTx } from "@/db";
import { switches } from "@/db/schema";

// Incident switches: one row per (kind, scope) while the switch is on; off is no row.
// scope_key is "global" or the organisation's id.

export async function listSwitchesForScopes({
  db,
  kind,
  scopeKeys,
}: {
  db: DbOrTx;
  kind: string;
  scopeKeys: string[];
}) {
  return db
    .select({
      kind: switches.kind,
      scopeKey: switches.scopeKey,
      reason: switches.reason,
      setAt: switches.setAt,
    })
    .from(switches)
    .where(and(eq(switches.kind, kind), inArray(switches.scopeKey, scopeKeys)));
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
  return db
    .select({
      kind: switches.kind,
      scopeKey: switches.scopeKey,
      reason: switches.reason,
      setAt: switches.setAt,
    })
    .from(switches)
    .where(inArray(switches.scopeKey, scopeKeys));
}
