import type { Role } from "@/db/schema";
import type { Actor } from "@/lib/audit/events";
import type { RequestInfo } from "./request";

export type { RequestInfo } from "./request";

/**
 * Who is calling, for whom and from where: the one shape every lib/ function that acts for a
 * caller takes. Built once per request, by the action wrapper (lib/auth/action.ts) from the
 * session or by the API-key check (lib/mail/api-keys.ts) from a bearer token.
 */
export type CallContext = {
  orgId: string;
  /** As the audit log names the caller. */
  actor: Actor & { type: "user" | "api_key" };
  /** The member's role; null for an API key, which may only send. */
  role: Role | null;
  request: RequestInfo;
  /** An API key's mailboxes (null: every mailbox of the organisation); null for a person. */
  allowedMailboxIds: string[] | null;
};

/** A signed-in member's context (role known). */
export type MemberContext = CallContext & { actor: { type: "user" }; role: Role };

/**
 * Mailwarden itself acting for an organisation (notification emails): no person, no key, no
 * request. Only server code builds one (lib/notifications); no session or bearer token can.
 */
export type SystemContext = {
  orgId: string;
  actor: { type: "system"; id?: null; label: string };
  role: null;
  request: RequestInfo;
  allowedMailboxIds: null;
};

/** Who may pass the send chokepoint: a caller, or Mailwarden for its notifications. */
export type SenderContext = CallContext | SystemContext;
