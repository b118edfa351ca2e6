import "server-only";
import { wholeAddressPattern } from "@/db/queries/address-match";
import { deleteDemoInboxMessages } from "@/lib/demo/inbox";
import { env } from "@/lib/env";
import { demoInboxDataDir } from "@/lib/mail/send-queued";

/**
 * Demo mode only: the demo SMTP server keeps every message it accepted as a file of the demo
 * inbox (lib/demo/inbox.ts), readable on the Demo inbox page. An erasure deletes those that
 * name the address as a whole (to, cc, bcc, from, the sending account, or in the text), as it
 * deletes or rewrites the rows that do. Returns how many, or null outside demo mode.
 */
export async function eraseFromDemoInbox(
  email: string,
): Promise<{ messagesDeleted: number } | null> {
  if (!env().isDemo) return null;
  const address = new RegExp(wholeAddressPattern(email), "i");
  const messagesDeleted = await deleteDemoInboxMessages(demoInboxDataDir(), (text) =>
    address.test(text),
  );
  return { messagesDeleted };
}
