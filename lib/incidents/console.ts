import "server-only";
import { type Database, type DbOrTx, inTransaction } from "@/db";
import { getLatestAuditEventMetadata } from "@/db/queries/audit";
import { cancelJobRow } from "@/db/queries/jobs";
import {
  getMailboxForOrg,
  type MailboxProblemStatus,
  setMailboxPaused,
} from "@/db/queries/mailboxes";
import { deleteSessionsOfOrgMembers } from "@/db/queries/sessions";
import { GLOBAL_SWITCH_SCOPE, listActiveSwitches } from "@/db/queries/switches";
import { writeAuditEvent } from "@/lib/audit/write";
import type { MemberContext } from "@/lib/auth/context";
import { withdrawInvitations } from "@/lib/auth/members";
import { closeMailboxTransport } from "@/lib/mail/transport";
import type { SwitchKind } from "./switches";

// What the incidents page does besides the two switches: pause one mailbox, sign everyone out,
// cancel a long job, and who may act for every organisation. Each change is audited in its
// own transaction.

/** The reason every switch asks for: required, one paragraph at most. */
export const REASON_MAX = 500;

const PROBLEM_STATUSES: readonly string[] = ["needs_reconnect", "admin_action_required"];

/**
 * The problem status the mailbox had when it was last paused, as its `mailbox.paused` event
 * recorded it; null for any other status, and for events from before the status was recorded.
 */
async function statusBeforePause(
  tx: DbOrTx,
  orgId: string,
  mailboxId: string,
): Promise<MailboxProblemStatus | null> {
  const metadata = await getLatestAuditEventMetadata({
    db: tx,
    orgId,
    action: "mailbox.paused",
    target: { type: "mailbox", id: mailboxId },
  });
  const previous = metadata?.previousStatus;
  return typeof previous === "string" && PROBLEM_STATUSES.includes(previous)
    ? (previous as MailboxProblemStatus)
    : null;
}

/**
 * Pauses a mailbox, or resumes it to the state it was in before: one waiting for an
 * administrator or a reconnect still waits (and says so) instead of looking connected until its
 * next send fails and everyone is told again.
 */
export async function pauseMailbox(input: {
  db: DbOrTx;
  ctx: MemberContext;
  mailboxId: string;
  paused: boolean;
  reason: string;
}) {
  const { ctx } = input;
  const changed = await inTransaction(input.db, async (tx) => {
    const before = await getMailboxForOrg({
      db: tx,
      orgId: ctx.orgId,
      mailboxId: input.mailboxId,
      forUpdate: true,
    });
    if (!before) return null;
    const row = await setMailboxPaused({
      db: tx,
      orgId: ctx.orgId,
      mailboxId: input.mailboxId,
      paused: input.paused,
      resumeTo: input.paused ? null : await statusBeforePause(tx, ctx.orgId, input.mailboxId),
    });
    if (!row) return null;
    await writeAuditEvent(tx, {
      orgId: ctx.orgId,
      actor: ctx.actor,
      action: input.paused ? "mailbox.paused" : "mailbox.resumed",
      target: { type: "mailbox", id: row.id },
      outcome: "success",
      request: ctx.request,
      metadata: {
        address: row.address,
        status: row.status,
        previousStatus: before.status,
        reason: input.reason,
      },
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
    const ended = await deleteSessionsOfOrgMembers({
      db: tx,
      orgId: ctx.orgId,
      keepSessionToken: input.keepSessionToken,
    });
    // An invitation sent from a stolen session would let its sender back in after this.
    const invitationsWithdrawn = await withdrawInvitations(tx, ctx, { reason: "sessions_revoked" });
    const result = { ...ended, invitationsWithdrawn };
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
