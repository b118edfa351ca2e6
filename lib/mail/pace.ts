import "server-only";
import type { Database } from "@/db";
import { takePaceSlot } from "@/db/queries/queued-messages";
import type { ProviderId } from "@/db/schema";
import { env } from "@/lib/env";

// Each mailbox's pace for queued messages, across processes and instances (ARCHITECTURE.md,
// "Queued messages"): the provider's messages a minute (Microsoft 30, Google 60, demo 600 by
// default; SMTP_PER_MINUTE_*) become one slot every 60 / (0.98 n) seconds, kept in
// `mailbox_pace`.
// Taking a slot is one statement that moves the mailbox's next slot on by one interval, so any
// number of workers in any number of processes together start at most n messages a minute.
// Slots are taken only when a message is ready: an idle mailbox starts again at once.

export function messagesPerMinute(provider: ProviderId | string): number {
  const e = env();
  if (provider === "microsoft") return e.SMTP_PER_MINUTE_MICROSOFT;
  if (provider === "google") return e.SMTP_PER_MINUTE_GOOGLE;
  return e.SMTP_PER_MINUTE_DEMO;
}

// Slots run 2 % under the provider's figure: a message's arrival at the provider varies by the
// SMTP conversation's duration, and a pace exactly at the limit would, through that jitter alone,
// put one message too many in some of the provider's windows.
const PACE_MARGIN = 0.98;

export function paceIntervalMs(provider: ProviderId | string): number {
  return 60_000 / (messagesPerMinute(provider) * PACE_MARGIN);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Waits for the mailbox's next slot (taken now, so nobody else gets it). */
export async function awaitPaceSlot(
  db: Database,
  mailbox: { id: string; provider: string },
): Promise<void> {
  const waitMs = await takePaceSlot({
    db,
    mailboxId: mailbox.id,
    intervalMs: paceIntervalMs(mailbox.provider),
  });
  if (waitMs > 0) await sleep(waitMs);
}
