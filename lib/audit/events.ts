// The one typed list of audit actions. Adding an action here is the only way to log it.
export const AUDIT_ACTIONS = [
  "auth.sign_in",
  "auth.sign_out",
  "auth.account_linked",
  "auth.account_link_refused",
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
  "message.queued",
  "message.cancelled",
  "api_key.created",
  "api_key.revoked",
  "api_key.restricted",
  "mailbox.connection_tested",
  "message.refused",
  "switch.changed",
  "api_key.refused",
  "rate_limit.refused",
  "audit.exported",
  "audit.purged",
  "audit.chain_started",
  "settings.retention_changed",
  "privacy.retention_applied",
  "settings.client_facts_changed",
  "settings.notifications_changed",
  "mailbox.recovered",
  "mailbox.limit_reached",
  "privacy.request_recorded",
  "privacy.export_downloaded",
  "privacy.erased",
  "privacy.erasure_refused",
  "privacy.receipt_downloaded",
  "mailbox.paused",
  "mailbox.resumed",
  "sessions.revoked_all",
  "job.started",
  "job.cancelled",
  "job.completed",
  "job.failed",
  "webhook.endpoint_created",
  "webhook.endpoint_updated",
  "webhook.endpoint_deleted",
  "webhook.secret_rotated",
  "webhook.test_sent",
  "webhook.endpoint_refused",
  "webhook.endpoint_disabled",
] as const;

export type AuditAction = (typeof AUDIT_ACTIONS)[number];

/** What the activity page and exports call each action. */
export const AUDIT_ACTION_LABELS: Record<AuditAction, string> = {
  "auth.sign_in": "Signed in",
  "auth.sign_out": "Signed out",
  "auth.account_linked": "Sign-in account linked",
  "auth.account_link_refused": "Linking a sign-in account refused",
  "org.created": "Organisation created",
  "member.invited": "Member invited",
  "member.joined": "Member joined",
  "member.role_changed": "Member's role changed",
  "member.removed": "Member removed",
  "invitation.revoked": "Invitation revoked",
  "invitation.accepted": "Invitation accepted",
  "invitation.declined": "Invitation declined",
  "org.switched": "Switched organisation",
  "access.denied": "Access denied",
  "oauth.connect_started": "Mailbox connection started",
  "oauth.callback": "Provider answered a connection",
  "oauth.token_refreshed": "Mailbox token refreshed",
  "oauth.refresh_failed": "Mailbox token refresh failed",
  "mailbox.connected": "Mailbox connected",
  "mailbox.needs_reconnect": "Mailbox needs reconnecting",
  "mailbox.admin_action_required": "Mailbox needs an administrator",
  "mailbox.limit_reached": "Mailbox reached its provider's sending limit",
  "mailbox.revoked": "Mailbox disconnected",
  "keys.rotated": "Encryption keys rotated",
  "message.sent": "Message sent",
  "message.failed": "Message failed",
  "message.queued": "Message queued",
  "message.cancelled": "Queued message cancelled",
  "api_key.created": "API key created",
  "api_key.revoked": "API key revoked",
  "api_key.restricted": "API key restricted",
  "mailbox.connection_tested": "Mailbox connection tested",
  "message.refused": "Message refused",
  "switch.changed": "Incident switch changed",
  "mailbox.paused": "Mailbox paused",
  "mailbox.resumed": "Mailbox resumed",
  "sessions.revoked_all": "Everyone signed out",
  "job.started": "Job started",
  "job.cancelled": "Job cancelled",
  "job.completed": "Job finished",
  "job.failed": "Job failed",
  "privacy.request_recorded": "Data request recorded",
  "privacy.export_downloaded": "Personal data exported",
  "privacy.erased": "Personal data erased",
  "privacy.erasure_refused": "Erasure refused",
  "privacy.receipt_downloaded": "Erasure receipt downloaded",
  "privacy.retention_applied": "Old personal data removed",
  "api_key.refused": "API key refused",
  "rate_limit.refused": "Rate limit reached",
  "audit.exported": "Activity log exported",
  "audit.purged": "Old activity purged",
  "audit.chain_started": "Activity chain started from its first event by an operator",
  "settings.retention_changed": "Retention period changed",
  "settings.client_facts_changed": "OAuth client facts changed",
  "settings.notifications_changed": "Notification sender changed",
  "mailbox.recovered": "Mailbox working again",
  "webhook.endpoint_created": "Webhook endpoint created",
  "webhook.endpoint_updated": "Webhook endpoint changed",
  "webhook.endpoint_deleted": "Webhook endpoint deleted",
  "webhook.secret_rotated": "Webhook signing secret rotated",
  "webhook.test_sent": "Webhook test sent",
  "webhook.endpoint_refused": "Webhook endpoint refused",
  "webhook.endpoint_disabled": "Webhook endpoint turned off",
};

export function actionLabel(action: string): string {
  return AUDIT_ACTION_LABELS[action as AuditAction] ?? action;
}

export function isAuditAction(value: string): value is AuditAction {
  return (AUDIT_ACTIONS as readonly string[]).includes(value);
}

// Written on every send, refusal and token refresh, and once per mailbox when every mailbox of
// an organisation is revoked at once: a plain insert sealed later by the background sealer, so
// that they never queue on the organisation's chain lock. Every other action is rare and is
// sealed in its own transaction.
const HIGH_VOLUME_ACTIONS: ReadonlySet<AuditAction> = new Set([
  "message.sent",
  "message.failed",
  "message.refused",
  "message.queued",
  "message.cancelled",
  "access.denied",
  "oauth.token_refreshed",
  "oauth.refresh_failed",
  "api_key.refused",
  "rate_limit.refused",
  "mailbox.revoked",
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

// Metadata keys that name a person (email addresses): the writer moves them into the event's
// `personal` column, which erasure can replace without breaking the chain. Metadata keeps none.
export const PERSONAL_METADATA_KEYS: ReadonlySet<string> = new Set([
  "email",
  "address",
  "previousAddress",
  "returnedAddress",
]);

/**
 * A provider's reply as the audit log keeps it: every address-like token (`x@y`) becomes
 * `[address]`. A reply can quote a recipient ("550 5.1.1 <bob@…>: Recipient address rejected")
 * and chained metadata is out of erasure's reach; the message row keeps the full reply, which
 * erasure and retention rewrite. Linear: one pass over whitespace-separated tokens.
 */
export function withoutAddresses(reply: string | null): string | null {
  return reply === null
    ? null
    : reply.replace(/[^\s<>"'()[\],;]+/g, (token) => (token.includes("@") ? "[address]" : token));
}

export type AuditInput = {
  orgId: string | null;
  actor: Actor;
  action: AuditAction;
  /**
   * What the event is about. The id is chained as it is, out of erasure's reach: never an email
   * address or other personal value (that goes in `personal`); null when there is no row to name
   * (a refused invitation: the address it was for is its `personal.email`).
   */
  target?: { type: string; id: string | null } | null;
  outcome: "success" | "failure" | "denied";
  /** Where the caller came from (lib/auth/request.ts); none for system events. */
  request?: RequestInfo | null;
  /**
   * Never at the top level: `...requestInfo()` spread here compiled (a spread escapes the
   * excess-property check) and stored no address. Pass it as `request`.
   */
  ip?: never;
  userAgent?: never;
  metadata?: Record<string, unknown>;
  /** Personal values (email addresses) the event names, kept apart from metadata. */
  personal?: Record<string, unknown>;
};
