// The one typed list of audit actions. Adding an action here is the only way to log it.
export const AUDIT_ACTIONS = [
  "auth.sign_in",
  "auth.sign_out",
  "org.created",
  "member.invited",
  "member.joined",
  "member.role_changed",
  "member.removed",
  "invitation.revoked",
  "invitation.accepted",
  "invitation.declined",
  "org.switched",
  "access.denied",
  "oauth.connect_started",
  "oauth.callback",
  "oauth.token_refreshed",
  "oauth.refresh_failed",
  "mailbox.connected",
  "mailbox.needs_reconnect",
  "mailbox.admin_action_required",
  "mailbox.revoked",
  "keys.rotated",
  "message.sent",
  "message.failed",
  "api_key.created",
  "api_key.revoked",
  "api_key.restricted",
  "mailbox.connection_tested",
  "message.refused",
  "switch.changed",
] as const;

export type AuditAction = (typeof AUDIT_ACTIONS)[number];

// Written on every send, refusal and token refresh: a plain insert sealed later by the
// background sealer, so that they never queue on the organisation's chain lock. Every other
// action is rare and is sealed in its own transaction.
const HIGH_VOLUME_ACTIONS: ReadonlySet<AuditAction> = new Set([
  "message.sent",
  "message.failed",
  "message.refused",
  "access.denied",
  "oauth.token_refreshed",
  "oauth.refresh_failed",
]);

export function isHighVolume(action: AuditAction): boolean {
  return HIGH_VOLUME_ACTIONS.has(action);
}

/** Where a request came from; the client address is derived in lib/auth/client-address.ts. */
export type RequestInfo = { ip: string | null; userAgent: string | null };

export type Actor =
  | { type: "user"; id: string; label?: string | null }
  | { type: "api_key"; id: string; label?: string | null }
  | { type: "system"; id?: null; label?: string | null };

export type AuditInput = {
  orgId: string | null;
  actor: Actor;
  action: AuditAction;
  target?: { type: string; id: string } | null;
  outcome: "success" | "failure" | "denied";
  /** Where the caller came from (lib/auth/request.ts); none for system events. */
  request?: RequestInfo | null;
  metadata?: Record<string, unknown>;
};
