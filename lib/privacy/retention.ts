import "server-only";
import { type Database, withRunLock } from "@/db";
import { listAuditEventsWithNetworkFields, lockAuditChain } from "@/db/queries/audit";
import { removeMessagePersonalFields } from "@/db/queries/messages";
import { listPersonalRetentionSettings } from "@/db/queries/organization-settings";
import { deleteFinishedWebhookDeliveries } from "@/db/queries/webhooks";
import { DEFAULT_AUDIT_NETWORK_RETENTION_DAYS } from "@/db/schema";
import { AuditPersonalFieldsError, replacePersonalFields } from "@/lib/audit/redact";
import { SEAL_BATCH, sealChainInTransaction } from "@/lib/audit/seal";
import { writeAuditEvent } from "@/lib/audit/write";

// Retention of personal data in kept rows: after each organisation's periods, messages lose their
// recipients and subject, finished webhook deliveries (whose bodies name mailbox addresses) are
// deleted with the messages' period, and audit events lose their IP address and user agent
// (through the erasure path, so the chain still verifies). Each batch is its own transaction, so a large backlog
// holds its row and chain locks for one batch at a time. The system chain ('': refused unknown
// API keys, anonymous OAuth callbacks, sign-outs without an organisation, all with a stranger's
// IP address) has no settings of its own and follows the deployment's default network period.

const DAY_MS = 86_400_000;
export const RETENTION_BATCH = 1_000;

export function removedSubject(days: number) {
  return `[removed after ${days} days]`;
}

/** Empties the messages created before `before`; returns how many changed. */
export async function removeOldMessagePersonalFields(
  db: Database,
  { orgId, days, before }: { orgId: string; days: number; before: Date },
): Promise<number> {
  let total = 0;
  for (;;) {
    const changed = await db.transaction((tx) =>
      removeMessagePersonalFields({
        db: tx,
        orgId,
        before,
        subject: removedSubject(days),
        removedAt: new Date(),
        limit: RETENTION_BATCH,
      }),
    );
    total += changed;
    if (changed < RETENTION_BATCH) return total;
  }
}

/**
 * Removes the IP address and user agent of the chain's events that occurred before `before`.
 * Pending events are sealed first, so an old event still waiting for its seal is not skipped.
 * Returns how many events changed.
 */
export async function removeOldAuditNetworkFields(
  db: Database,
  { chain, before }: { chain: string; before: Date },
): Promise<number> {
  let total = 0;
  let first = true;
  for (;;) {
    const changed = await db.transaction(async (tx) => {
      await lockAuditChain({ db: tx, chain });
      if (first) {
        let sealed: number;
        do {
          sealed = await sealChainInTransaction(tx, chain);
        } while (sealed === SEAL_BATCH);
      }
      const rows = await listAuditEventsWithNetworkFields({
        db: tx,
        chain,
        before,
        limit: RETENTION_BATCH,
      });
      return replacePersonalFields(tx, {
        rows: rows.map((row) => ({ ...row, ip: null, userAgent: null })),
        erasedAt: new Date(),
      });
    });
    first = false;
    total += changed;
    if (changed < RETENTION_BATCH) return total;
  }
}

export type RetentionRun = {
  /** "" for the system chain (events of no organisation). */
  orgId: string;
  messages: number;
  webhookDeliveries: number;
  auditEvents: number;
  failed: boolean;
  /** Events whose personal fields fail their MAC, left as they are (no retention for the chain). */
  auditRefused?: { seq: number; reason: string }[];
};

/** Runs one part of an organisation's retention; a failure is logged and counts nothing. */
async function attempt(part: string, work: () => Promise<number>) {
  try {
    return { changed: await work(), failed: false, refused: [] };
  } catch (error) {
    console.error(`[mailwarden] personal data retention (${part}): ${(error as Error).message}`);
    // Edited personal fields stop the chain's run (lib/audit/redact.ts): named in the report.
    const refused =
      error instanceof AuditPersonalFieldsError
        ? error.events.map(({ seq, reason }) => ({ seq, reason }))
        : [];
    return { changed: 0, failed: true, refused };
  }
}

/**
 * Applies every organisation's periods, then the system chain's (events of no organisation: no
 * settings row, so the default network period an organisation without one gets), one process at
 * a time (a run that finds another running returns null). A chain where something changed, or
 * failed, gets one `privacy.retention_applied` event with the counts; the others get none, so a
 * quiet day adds nothing to the log.
 */
export async function applyPersonalDataRetention({
  db,
  now = new Date(),
}: {
  db: Database;
  now?: Date;
}): Promise<RetentionRun[] | null> {
  return withRunLock(db, "retention:personal", async () => {
    const runs: RetentionRun[] = [];
    const chains: ChainPeriods[] = [
      ...(await listPersonalRetentionSettings({ db })),
      { orgId: null, messageDays: null, networkDays: DEFAULT_AUDIT_NETWORK_RETENTION_DAYS },
    ];
    for (const periods of chains) {
      const run = await applyChainRetention(db, now, periods);
      if (run) runs.push(run);
    }
    return runs;
  });
}

/** An organisation's periods (days; null keeps for ever), or the system chain's (orgId null). */
type ChainPeriods = {
  orgId: string | null;
  messageDays: number | null;
  networkDays: number | null;
};

/** One chain's retention, audited on it; null when nothing changed or failed. */
async function applyChainRetention(
  db: Database,
  now: Date,
  { orgId, messageDays, networkDays }: ChainPeriods,
): Promise<RetentionRun | null> {
  const cutoff = (days: number | null) =>
    days === null ? null : new Date(now.getTime() - days * DAY_MS);
  const messagesBefore = cutoff(messageDays);
  const eventsBefore = cutoff(networkDays);
  const messages = await attempt("messages", async () =>
    messagesBefore === null || messageDays === null || orgId === null
      ? 0
      : removeOldMessagePersonalFields(db, { orgId, days: messageDays, before: messagesBefore }),
  );
  const deliveries = await attempt("webhook deliveries", async () =>
    messagesBefore === null || orgId === null
      ? 0
      : deleteFinishedWebhookDeliveries({ db, orgId, before: messagesBefore }),
  );
  const events = await attempt("audit events", async () =>
    eventsBefore === null
      ? 0
      : removeOldAuditNetworkFields(db, { chain: orgId ?? "", before: eventsBefore }),
  );
  const failed = messages.failed || deliveries.failed || events.failed;
  if (messages.changed + deliveries.changed + events.changed === 0 && !failed) return null;
  // A chain the sealer refuses cannot take the event: logged, and the other chains carry on.
  await attempt("its audit event", async () => {
    await writeAuditEvent(db, {
      orgId,
      actor: { type: "system", label: "Retention" },
      action: "privacy.retention_applied",
      outcome: failed ? "failure" : "success",
      metadata: {
        messages: messages.changed,
        messageDays,
        messagesBefore: messagesBefore?.toISOString() ?? null,
        webhookDeliveries: deliveries.changed,
        auditEvents: events.changed,
        networkDays,
        auditEventsBefore: eventsBefore?.toISOString() ?? null,
        ...(failed
          ? {
              failedParts: [
                messages.failed && "messages",
                deliveries.failed && "webhook deliveries",
                events.failed && "audit",
              ].filter(Boolean),
            }
          : {}),
        ...(events.refused.length > 0 ? { auditRefused: events.refused } : {}),
      },
    });
    return 1;
  });
  return {
    orgId: orgId ?? "",
    messages: messages.changed,
    webhookDeliveries: deliveries.changed,
    auditEvents: events.changed,
    failed,
    ...(events.refused.length > 0 ? { auditRefused: events.refused } : {}),
  };
}
