import "server-only";
import { type Database, type DbOrTx, inTransaction } from "@/db";
import { cancelJobRow } from "@/db/queries/jobs";
import { setMailboxPaused } from "@/db/queries/mailboxes";
import { deleteSessionsOfOrgMembers } from "@/db/queries/sessions";
import { listActiveSwitches } from "@/db/queries/switches";
import type { Actor } from "@/lib/audit/events";
import { writeAuditEvent } from "@/lib/audit/write";
import { closeMailboxTransport } from "@/lib/mail/transport";
import { GLOBAL_SCOPE_KEY, type SwitchKind } from "./switches";

// What the incidents page does besides the two switches: pause one mailbox, sign everyone out,
// cancel a long job, and who may act for every organisation. Each change is audited in its
// own transaction.

type Request = { ip: string | null; userAgent: string | null };
type UserActor = Actor;

/** The reason every switch asks for: required, one paragraph at most. */
export const REASON_MAX = 500;

export async function pauseMailbox(input: {
  db: DbOrTx;
  orgId: string;
  mailboxId: string;
  paused: boolean;
  reason: string;
  actor: UserActor;
  request: Request;
}) {
  const changed = await inTransaction(input.db, async (tx) => {
    const row = await setMailboxPaused({
      db: tx,
      orgId: input.orgId,
      mailboxId: input.mailboxId,
      paused: input.paused,
    });
    if (!row) return null;
    await writeAuditEvent(tx, {
      orgId: input.orgId,
      actor: input.actor,
      action: input.paused ? "mailbox.paused" : "mailbox.resumed",
      target: { type: "mailbox", id: row.id },
      outcome: "success",
      request: input.request,
      metadata: { address: row.address, status: row.status, reason: input.reason },
    });
    return row;
  });
  // A pooled connection of this process must not outlive the pause.
  if (changed && input.paused) closeMailboxTransport(input.mailboxId);
  return changed;
}

/**
 * Deletes the database sessions of every member of the organisation except the caller's own
 * current session (so the person handling the incident keeps working; their other sessions,
 * an attacker's included, end too).
 */
export async function signEveryoneOut(input: {
  db: DbOrTx;
  orgId: string;
  keepSessionToken: string | null;
  reason: string;
  actor: UserActor;
  request: Request;
}) {
  return inTransaction(input.db, async (tx) => {
    const result = await deleteSessionsOfOrgMembers({
      db: tx,
      orgId: input.orgId,
      keepSessionToken: input.keepSessionToken,
    });
    await writeAuditEvent(tx, {
      orgId: input.orgId,
      actor: input.actor,
      action: "sessions.revoked_all",
      target: { type: "organization", id: input.orgId },
      outcome: "success",
      request: input.request,
      metadata: {
        ...result,
        keptOwnSession: Boolean(input.keepSessionToken),
        reason: input.reason,
      },
    });
    return result;
  });
}

/** Cancels a job of this organisation (orgId null: a deployment-wide job). */
export async function cancelJobAudited(input: {
  db: Database;
  orgId: string | null;
  jobId: string;
  actor: UserActor;
  request: Request;
}) {
  return input.db.transaction(async (tx) => {
    const row = await cancelJobRow({ db: tx, jobId: input.jobId, orgId: input.orgId });
    if (!row) return null;
    await writeAuditEvent(tx, {
      orgId: input.orgId,
      actor: input.actor,
      action: "job.cancelled",
      target: { type: "job", id: row.id },
      outcome: "success",
      request: input.request,
      metadata: { kind: row.kind },
    });
    return row;
  });
}

export type ActiveSwitch = {
  kind: SwitchKind;
  scope: "global" | "organization";
  reason: string;
  since: Date;
};

/** The switches on for this organisation or for everyone: read on every page, never cached. */
export async function activeSwitches({
  db,
  orgId,
}: {
  db: DbOrTx;
  orgId: string;
}): Promise<ActiveSwitch[]> {
  const rows = await listActiveSwitches({ db, scopeKeys: [GLOBAL_SCOPE_KEY, orgId] });
  return rows.map((r) => ({
    kind: r.kind as SwitchKind,
    scope: r.scopeKey === GLOBAL_SCOPE_KEY ? "global" : "organization",
    reason: r.reason,
    since: r.setAt,
  }));
}
