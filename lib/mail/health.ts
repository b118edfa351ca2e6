import "server-only";
import { sql } from "drizzle-orm";
import { getDb, inTransaction, openedDb } from "@/db";
import { claimMailboxesForHealthCheck } from "@/db/queries/mailboxes";
import type { SystemContext } from "@/lib/auth/context";
import { env } from "@/lib/env";
import { isSendingPaused } from "@/lib/incidents/switches";
import { getAccessToken } from "@/lib/oauth/tokens";
import { testConnection } from "./send";

// The periodic mailbox health check: without it a dead grant is found only when a send fails.
// It refreshes access tokens that would expire before the next run and gives mailboxes idle
// longer than MAILBOX_HEALTH_IDLE_SECONDS the connection test (TLS + AUTH, no DATA). Both go
// through the code a send uses — getAccessToken and the chokepoint's testConnection — so a
// failure moves the mailbox, audits and notifies exactly as a failed send does.

export type HealthCheckResult = { mailboxId: string; refreshed?: string; tested?: string };

function systemContext(orgId: string): SystemContext {
  return {
    orgId,
    actor: { type: "system", label: "mailbox health check" },
    role: null,
    request: { ip: null, userAgent: null },
    allowedMailboxIds: null,
  };
}

/** One run. One process at a time across instances (an advisory lock); null when another has it. */
export async function runMailboxHealthCheck({
  now = new Date(),
  intervalMs = env().MAILBOX_HEALTH_INTERVAL_SECONDS * 1000,
  idleMs = env().MAILBOX_HEALTH_IDLE_SECONDS * 1000,
}: {
  now?: Date;
  intervalMs?: number;
  idleMs?: number;
} = {}): Promise<HealthCheckResult[] | null> {
  const db = await getDb();
  const claimed = await inTransaction(db, async (tx) => {
    const result = await tx.execute(
      sql`select pg_try_advisory_xact_lock(hashtextextended('mailbox:health', 0)) as locked`,
    );
    const locked = (result as unknown as { rows: { locked: boolean }[] }).rows[0]?.locked;
    if (!locked) return null;
    return claimMailboxesForHealthCheck({
      db: tx,
      now,
      // A token that would expire before the next run (plus a minute) is refreshed now.
      refreshBefore: new Date(now.getTime() + intervalMs + 60_000),
      idleSince: new Date(now.getTime() - idleMs),
    });
  });
  if (claimed === null) return null;

  const results: HealthCheckResult[] = [];
  const paused = new Map<string, boolean>();
  for (const mailbox of claimed) {
    // During a pause nothing is tested: a refused test every interval says nothing new.
    if (!paused.has(mailbox.orgId)) {
      paused.set(mailbox.orgId, (await isSendingPaused({ db, orgId: mailbox.orgId })).isPaused);
    }
    if (paused.get(mailbox.orgId)) continue;
    const result: HealthCheckResult = { mailboxId: mailbox.id };
    if (mailbox.expiring) {
      // Failures are recorded by the refresh itself (needs_reconnect, notices, audit, backoff).
      result.refreshed = await getAccessToken(mailbox.id, { forceRefresh: true }).then(
        () => "ok",
        (error: Error) => error.name,
      );
    }
    if (mailbox.idle && result.refreshed !== "MailboxNeedsReconnectError") {
      const outcome = await testConnection({
        ctx: systemContext(mailbox.orgId),
        mailboxId: mailbox.id,
      }).catch((error: Error) => ({ kind: error.name }));
      result.tested = outcome.kind;
    }
    results.push(result);
  }
  return results;
}

const holder = globalThis as typeof globalThis & { __mailwardenHealth?: NodeJS.Timeout };

/** Started in every process; the lock lets one run at a time. */
export function startMailboxHealthCheck() {
  if (holder.__mailwardenHealth) return;
  holder.__mailwardenHealth = setInterval(() => {
    openedDb()
      .then((db) => (db ? runMailboxHealthCheck() : null))
      .catch((error: Error) => console.error(`[mailwarden] mailbox health: ${error.message}`));
  }, env().MAILBOX_HEALTH_INTERVAL_SECONDS * 1000);
  holder.__mailwardenHealth.unref();
}
