import "server-only";
import { sql } from "drizzle-orm";
import { type DbOrTx, inTransaction, openedDb, type Tx } from "@/db";
import { findAuditPurgeCut, lockAuditChain, purgeAuditEventsThrough } from "@/db/queries/audit";
import { listAuditRetentionSettings } from "@/db/queries/organization-settings";
import { env } from "@/lib/env";
import { applyPersonalDataRetention } from "@/lib/privacy/retention";
import { isoMicros, macAnchor } from "./chain";
import { auditChainKey } from "./key";
import { AuditChainError } from "./seal";
import { verifyAuditChain, verifyAuditChainThrough } from "./verify";
import { writeAuditEvent } from "./write";

// Retention: each organisation may keep its audit events for a number of days, and the system
// chain ('', events of no organisation) for SYSTEM_AUDIT_RETENTION_DAYS, set by the operators.
// The purge cuts the chain's oldest sealed events and records a MAC'd anchor (the seq and hash
// of the newest removed event): verification starts there instead of at genesis, so what
// remains is still checked link by link, and a cut anywhere else is still a gap.

const DAY_MS = 86_400_000;
const JOB_EVERY_MS = DAY_MS;

/**
 * Purges the chain's sealed events that occurred before `before`: the organisation's, or the
 * system chain's for `orgId` null. Refuses a chain that does not verify (purging would hide the
 * damage). The purge is itself an audit event, sealed in the same transaction. Returns how many
 * events were removed.
 */
export async function purgeAuditChain({
  db,
  orgId,
  before,
  retentionDays,
}: {
  db: DbOrTx;
  orgId: string | null;
  before: Date;
  retentionDays?: number;
}): Promise<number> {
  // As writeAuditEvent names it, so the purge event lands in the chain it cut.
  const chain = orgId ?? "";
  return inTransaction(db, async (tx) => {
    await lockAuditChain({ db: tx, chain });
    const report = await verifyAuditChain({ db: tx, chain, mode: "incremental" });
    if (report.problem) {
      throw new AuditChainError(
        `audit chain "${chain}" does not verify (seq ${report.problem.seq}: ${report.problem.reason}); not purging`,
      );
    }
    const cut = await findAuditPurgeCut({ db: tx, chain, before });
    if (!cut) return 0;
    // The incremental check trusts what lies before its last verified checkpoint, and the cut
    // is picked by times it never re-hashed: the events to delete are re-hashed from the
    // chain's start, so a purge never removes edited events (or recent ones made to look old).
    const purged = await verifyAuditChainThrough({ db: tx, chain, endSeq: cut.seq });
    if (purged) {
      throw new AuditChainError(
        `audit chain "${chain}" does not verify through seq ${cut.seq} (seq ${purged.seq}: ${purged.reason}); not purging`,
      );
    }
    const purgedAt = new Date();
    const anchor = { chain, seq: cut.seq, hash: cut.hash, purgedAt: isoMicros(purgedAt) };
    const removed = await purgeAuditEventsThrough({
      db: tx,
      anchor: { ...anchor, purgedAt, mac: macAnchor(auditChainKey(), anchor) },
    });
    await writeAuditEvent(tx, {
      orgId,
      actor: { type: "system", label: "Retention" },
      action: "audit.purged",
      outcome: "success",
      metadata: {
        removed,
        before: before.toISOString(),
        throughSeq: cut.seq,
        anchorHash: cut.hash,
        ...(retentionDays === undefined ? {} : { retentionDays }),
      },
    });
    return removed;
  });
}

/**
 * Applies every organisation's retention setting, then the system chain's (reported as orgId
 * ""). One process at a time: the others find the advisory lock taken and skip this run.
 */
export async function runAuditRetention({
  db,
  now = new Date(),
  systemRetentionDays = env().SYSTEM_AUDIT_RETENTION_DAYS,
}: {
  db: DbOrTx;
  now?: Date;
  systemRetentionDays?: number;
}) {
  return inTransaction(db, async (tx) => {
    const result = await tx.execute(
      sql`select pg_try_advisory_xact_lock(hashtextextended('audit:retention', 0)) as locked`,
    );
    const locked = (result as unknown as { rows: { locked: boolean }[] }).rows[0]?.locked;
    if (!locked) return null;
    const purged: { orgId: string; removed: number }[] = [];
    const settings: { orgId: string | null; days: number | null }[] = [
      ...(await listAuditRetentionSettings({ db: tx })),
      { orgId: null, days: systemRetentionDays ?? null },
    ];
    for (const { orgId, days } of settings) {
      if (days === null) continue;
      const before = new Date(now.getTime() - days * DAY_MS);
      try {
        // A savepoint each: one chain that refuses leaves the others' purges standing.
        const removed = await (tx as Tx).transaction((sp) =>
          purgeAuditChain({ db: sp, orgId, before, retentionDays: days }),
        );
        purged.push({ orgId: orgId ?? "", removed });
      } catch (error) {
        console.error(`[mailwarden] audit retention: ${(error as Error).message}`);
      }
    }
    return purged;
  });
}

const holder = globalThis as typeof globalThis & { __mailwardenRetention?: NodeJS.Timeout };

// Soon after start as well as daily: a process restarted more often than once a day would
// otherwise never run it.
const FIRST_RUN_AFTER_MS = 60_000;

async function runDailyRetention() {
  const db = await openedDb();
  if (!db) return;
  await runAuditRetention({ db }).catch((error: Error) => {
    console.error(`[mailwarden] audit retention: ${error.message}`);
  });
  await applyPersonalDataRetention({ db }).catch((error: Error) => {
    console.error(`[mailwarden] personal data retention: ${error.message}`);
  });
}

/**
 * The daily job, started beside the sealer in every process; the locks pick one. It purges old
 * events, then removes personal fields past each organisation's periods (lib/privacy/retention.ts).
 */
export function startAuditRetentionJob() {
  if (holder.__mailwardenRetention) return;
  holder.__mailwardenRetention = setInterval(runDailyRetention, JOB_EVERY_MS);
  holder.__mailwardenRetention.unref();
  setTimeout(runDailyRetention, FIRST_RUN_AFTER_MS).unref();
}
