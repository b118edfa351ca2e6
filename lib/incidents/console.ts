import "server-only";
import { type Database, type DbOrTx, inTransaction } from "@/db";
import { cancelJobRow } from "@/db/queries/jobs";
import { setMailboxPaused } from "@/db/queries/mailboxes";
import { deleteSessionsOfOrgMembers } from "@/db/queries/sessions";
import { GLOBAL_SWITCH_SCOPE, listActiveSwitches } from "@/db/queries/switches";
import { writeAuditEvent } from "@/lib/audit/write";
import type { MemberContext } from "@/lib/auth/context";
import { closeMailboxTransport } from "@/lib/mail/transport";
import type { SwitchKind } from "./switches";

// What the incidents page does besides the two switches: pause one mailbox, sign everyone out,
// cancel a long job, and who may act for every organisation. Each change is audited in its
// own transaction.

/** The reason every switch asks for: required, one paragraph at most. */
export const REASON_MAX = 500;

export async function pauseMailbox(input: {
  db: DbOrTx;
  ctx: MemberContext;
  mailboxId: string;
  paused: boolean;
  reason: string;
}) {
  const { ctx } = input;
  const changed = await inTransaction(input.db, async (tx) => {
    const row = await setMailboxPaused({
      db: tx,
      orgId: ctx.orgId,
      mailboxId: input.mailboxId,
      paused: input.paused,
    });
    if (!row) return null;
    await writeAuditEvent(tx, {
      orgId: ctx.orgId,
      actor: ctx.actor,
      action: input.paused ? "mailbox.paused" : "mailbox.resumed",
      target: { type: "mailbox", id: row.id },
      outcome: "success",
      request: ctx.request,
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
  ctx: MemberContext;
  keepSessionToken: string | null;
  reason: string;
}) {
  const { ctx } = input;
  return inTransaction(input.db, async (tx) => {
    const result = await deleteSessionsOfOrgMembers({
      db: tx,
      orgId: ctx.orgId,
      keepSessionToken: input.keepSessionToken,
    });
    await writeAuditEvent(tx, {
      orgId: ctx.orgId,
      actor: ctx.actor,
      action: "sessions.revoked_all",
      target: { type: "organization", id: ctx.orgId },
      outcome: "success",
      request: ctx.request,
      metadata: {
        ...result,
        keptOwnSession: Boolean(input.keepSessionToken),
        reason: input.reason,
      },
    });
    return result;
  });
}

/** Cancels a job of the caller's organisation, or a deployment-wide one when `deploymentWide`. */
export async function cancelJobAudited(input: {
  db: Database;
  ctx: MemberContext;
  jobId: string;
  deploymentWide?: boolean;
}) {
  const { ctx } = input;
  const orgId = input.deploymentWide ? null : ctx.orgId;
  return input.db.transaction(async (tx) => {
    const row = await cancelJobRow({ db: tx, jobId: input.jobId, orgId });
    if (!row) return null;
    await writeAuditEvent(tx, {
      orgId,
      actor: ctx.actor,
      action: "job.cancelled",
      target: { type: "job", id: row.id },
      outcome: "success",
      request: ctx.request,
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
  const rows = await listActiveSwitches({ db, scopeKeys: [GLOBAL_SWITCH_SCOPE, orgId] });
  return rows.map((r) => ({
    kind: r.kind as SwitchKind,
    scope: r.scopeKey === GLOBAL_SWITCH_SCOPE ? "global" : "organization",
    reason: r.reason,
    since: r.setAt,
  }));
}
