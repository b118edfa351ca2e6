import "server-only";
import type { DbOrTx } from "@/db";
import { verifyAuditChain } from "./verify";

/** Re-hashes an organisation's whole chain; `brokenAt` is the first bad seq, null when intact. */
export async function verifyOrganizationChain(db: DbOrTx, orgId: string) {
  const report = await verifyAuditChain({ db, chain: orgId, mode: "full" });
  return { count: report.length, brokenAt: report.problem?.seq ?? null, problem: report.problem };
}

/** What a page view can afford: verifies only the events since the last verified checkpoint. */
export function checkOrganizationChain(db: DbOrTx, orgId: string) {
  return verifyAuditChain({ db, chain: orgId, mode: "incremental" });
}
