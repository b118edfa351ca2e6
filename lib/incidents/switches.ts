import "server-only";
import { type DbOrTx, inTransaction } from "@/db";
import {
  deleteSwitch,
  GLOBAL_SWITCH_SCOPE,
  insertSwitch,
  listSwitchesForOrg,
  type SwitchRow,
} from "@/db/queries/switches";
import type { Actor, AuditAction, RequestInfo } from "@/lib/audit/events";
import { writeAuditEvent } from "@/lib/audit/write";
import type { MemberContext } from "@/lib/auth/context";
import { UserFacingError } from "@/lib/errors";
import { queueNotification } from "@/lib/notifications";

// Incident switches. The send chokepoint reads them on every send, test sends and connection
// tests included; assertConnectionsAllowed guards every mailbox connection; the admin console
// flips them.

export type SwitchKind = "pause_sending" | "block_connections";

/** Global, or one organisation. */
export type SwitchScope = { type: "global" } | { type: "organization"; orgId: string };

export type SendingPause =
  | { isPaused: false }
  | { isPaused: true; scope: "global" | "organization"; reason: string; since: Date };

function scopeKey(scope: SwitchScope): string {
  return scope.type === "global" ? GLOBAL_SWITCH_SCOPE : scope.orgId;
}

/** One query for both scopes; a global pause wins over an organisation's own. */
export async function isSendingPaused({
  db,
  orgId,
}: {
  db: DbOrTx;
  orgId: string;
}): Promise<SendingPause> {
  const rows = await listSwitchesForOrg({ db, kind: "pause_sending", orgId });
  return sendingPauseOf(rows.find((r) => r.scopeKey === GLOBAL_SWITCH_SCOPE) ?? rows[0] ?? null);
}

/** What the pause switch that wins (or none) means; the mailbox lookup reads it too. */
export function sendingPauseOf(row: SwitchRow | null): SendingPause {
  if (!row) return { isPaused: false };
  return {
    isPaused: true,
    scope: row.scopeKey === GLOBAL_SWITCH_SCOPE ? "global" : "organization",
    reason: row.reason,
    since: new Date(row.setAt),
  };
}

export class ConnectionsBlockedError extends UserFacingError {
  readonly scope: "global" | "organization";
  readonly since: Date;
  constructor(scope: "global" | "organization", since: Date) {
    super(
      scope === "global"
        ? "Connecting mailboxes is blocked for everyone while an incident is handled. Nothing was connected; try again once the block is lifted."
        : "Connecting mailboxes is blocked for this organisation by an incident switch. Nothing was connected; it is lifted once the incident is handled.",
    );
    this.name = "ConnectionsBlockedError";
    this.scope = scope;
    this.since = since;
  }
}

/**
 * The one check before a mailbox connection starts or completes: while `block_connections` is
 * on for the organisation or globally, it records the refusal (outcome denied) and throws.
 */
export async function assertConnectionsAllowed({
  db,
  orgId,
  audit,
}: {
  db: DbOrTx;
  orgId: string;
  audit: {
    action: Extract<AuditAction, "oauth.connect_started" | "oauth.callback">;
    actor: Actor;
    request: RequestInfo;
    metadata?: Record<string, unknown>;
  };
}): Promise<void> {
  const block = await connectionsBlock({ db, orgId });
  if (!block) return;
  const { scope } = block;
  await writeAuditEvent(db, {
    orgId,
    actor: audit.actor,
    action: audit.action,
    outcome: "denied",
    request: audit.request,
    metadata: { ...audit.metadata, result: "refused", reason: "connections_blocked", scope },
  });
  throw new ConnectionsBlockedError(scope, block.since);
}

/** Whether `block_connections` is on for the organisation or globally (a global block wins). */
export async function connectionsBlock({
  db,
  orgId,
}: {
  db: DbOrTx;
  orgId: string;
}): Promise<{ scope: "global" | "organization"; since: Date } | null> {
  const rows = await listSwitchesForOrg({ db, kind: "block_connections", orgId });
  const row = rows.find((r) => r.scopeKey === GLOBAL_SWITCH_SCOPE) ?? rows[0];
  if (!row) return null;
  return {
    scope: row.scopeKey === GLOBAL_SWITCH_SCOPE ? "global" : "organization",
    since: row.setAt,
  };
}

/** `scope` is the switch's own (a global one has no organisation); `ctx` says who flips it. */
type SwitchChange = {
  db: DbOrTx;
  ctx: Pick<MemberContext, "actor" | "request">;
  kind: SwitchKind;
  scope: SwitchScope;
};

const SWITCH_NAMES: Record<SwitchKind, string> = {
  pause_sending: "Pause all sending",
  block_connections: "Block new connections",
};

async function auditSwitchChange(
  tx: DbOrTx,
  change: SwitchChange,
  metadata: { isOn: boolean } & Record<string, unknown>,
) {
  const { kind, scope, ctx } = change;
  if (scope.type === "organization") {
    const state = metadata.isOn ? "turned on" : "turned off";
    const reason = typeof metadata.reason === "string" ? ` Reason given: ${metadata.reason}` : "";
    await queueNotification(tx, {
      orgId: scope.orgId,
      kind: "switch_changed",
      title: `Incident switch ${state}: ${SWITCH_NAMES[kind]}`,
      body: `${ctx.actor.label ?? "An administrator"} ${state} "${SWITCH_NAMES[kind]}".${reason}`,
    });
  }
  await writeAuditEvent(tx, {
    orgId: scope.type === "organization" ? scope.orgId : null,
    actor: ctx.actor,
    action: "switch.changed",
    target: { type: "switch", id: `${kind}:${scopeKey(scope)}` },
    outcome: "success",
    request: ctx.request,
    metadata: { kind, scope: scope.type, ...metadata },
  });
}

/** Turns a switch on (no-op when already on) and records who and why. Returns whether it changed. */
export async function setSwitch(change: SwitchChange & { reason: string }): Promise<boolean> {
  const { kind, scope, reason, ctx } = change;
  return inTransaction(change.db, async (tx) => {
    const row = await insertSwitch({
      db: tx,
      kind,
      scopeKey: scopeKey(scope),
      orgId: scope.type === "organization" ? scope.orgId : null,
      reason,
      setBy: ctx.actor.id,
    });
    if (!row) return false;
    await auditSwitchChange(tx, change, { isOn: true, reason });
    return true;
  });
}

/** Turns a switch off (no-op when already off). Returns whether it changed. */
export async function clearSwitch(change: SwitchChange): Promise<boolean> {
  return inTransaction(change.db, async (tx) => {
    const row = await deleteSwitch({ db: tx, kind: change.kind, scopeKey: scopeKey(change.scope) });
    if (!row) return false;
    await auditSwitchChange(tx, change, { isOn: false, previousReason: row.reason });
    return true;
  });
}
