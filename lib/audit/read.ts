import "server-only";
import type { DbOrTx } from "@/db";
import { listChain } from "@/db/queries/audit";
import { verifyChain } from "./chain";

/** Re-hashes an organisation's whole chain; returns the first broken seq, or null when intact. */
export async function verifyOrganizationChain(db: DbOrTx, orgId: string) {
  const events = await listChain({ db, chain: orgId });
  return { count: events.length, brokenAt: verifyChain(events) };
}
