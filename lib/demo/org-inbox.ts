import "server-only";
import type { DbOrTx } from "@/db";
import { listMailboxes } from "@/db/queries/mailboxes";
import { type DemoMessage, readDemoInbox } from "./inbox";

/**
 * The demo inbox as one organisation may see it: only mail its own demo mailboxes sent. The
 * demo SMTP server keeps every organisation's mail in one folder.
 */
export async function readDemoInboxForOrg({
  db,
  orgId,
  dataDir,
  limit,
}: {
  db: DbOrTx;
  orgId: string;
  dataDir: string;
  limit?: number;
}): Promise<DemoMessage[]> {
  const senders = (await listMailboxes({ db, orgId }))
    .filter((mailbox) => mailbox.provider === "demo")
    .map((mailbox) => mailbox.address);
  if (senders.length === 0) return [];
  return readDemoInbox(dataDir, { senders, ...(limit ? { limit } : {}) });
}
