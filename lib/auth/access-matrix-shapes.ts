// The vocabulary of the authorization matrix (lib/auth/access-matrix.ts): the callers, the
// outcomes, what a row's input builder sees, and the usual shapes of a row's expectations.

export const CALLERS = [
  "owner",
  "admin",
  "sender",
  "compliance",
  "signedOut",
  "otherOrg",
  "apiKey",
  "otherOrgApiKey",
] as const;
export type Caller = (typeof CALLERS)[number];

export type Outcome = "ok" | "redirect" | 400 | 401 | 403 | 404;
export type Expect = Record<Caller, Outcome>;

/** Organisation A as a row's input builder sees it. Makers return the id of a fresh row. */
export type Target = {
  orgId: string;
  /** A connected demo mailbox that can really send. */
  mailboxId: string;
  newMailbox(): Promise<string>;
  /** A connected mailbox the provider then refused for a reason only an administrator fixes. */
  newMailboxNeedingAdmin(): Promise<string>;
  newApiKey(): Promise<string>;
  newMember(role: "admin" | "sender" | "compliance"): Promise<string>;
  newInvitation(): Promise<string>;
  /** An invitation of A addressed to the calling person (to A's owner when not in A). */
  newInvitationToMe(): Promise<string>;
  /** Another organisation the calling person belongs to (A's owner's when not in A). */
  newOrganizationOfMine(): Promise<string>;
  /** A notice addressed to the calling member (to A's owner when the caller is not in A). */
  newNotice(): Promise<string>;
  /** A connection A's owner started, authorised at the provider: the callback URL it returns. */
  newCallback(): Promise<string>;
  /** An address nobody has used. */
  newEmail(): string;
  /** An event in A's audit log: its id. */
  newAuditEvent(): Promise<string>;
  /** A data request of A about a fresh member of A; completed ones carry a receipt. */
  newDataRequest(kind: "export" | "erasure", options?: { completed?: boolean }): Promise<string>;
  /** A message of A queued from its mailbox (waiting, not due for a day): its id. */
  newQueuedMessage(): Promise<string>;
  /** A webhook endpoint of A (on a local port nothing listens on). */
  newWebhookEndpoint(): Promise<string>;
  /** Deletes A's webhook endpoints so that one more fits under the cap (10 per organisation). */
  roomForWebhookEndpoint(): Promise<void>;
};

export type Form = Record<string, string | string[]>;

export type HttpCall = {
  method: string;
  path: string;
  headers?: Record<string, string>;
  body?: string;
  params?: Record<string, string | string[]>;
};

export type PageCall = {
  params?: Record<string, string | string[]>;
  searchParams?: Record<string, string>;
};

export type Row =
  | { kind: "action"; expect: Expect; call: (t: Target) => Form | Promise<Form> }
  | {
      kind: "route";
      expect: Expect;
      call: (t: Target) => HttpCall | Promise<HttpCall>;
      /** For a route that answers everything with a redirect: its outcome from the Location. */
      outcomeOf?: (location: URL) => Outcome;
    }
  | { kind: "page"; expect: Expect; call?: (t: Target) => PageCall | Promise<PageCall> }
  /**
   * A "use server" function declared inside a page or component: it has no export to call, so
   * the row says in words who may call it. Prefer a "use server" file for anything new.
   */
  | { kind: "inline"; who: string };

export type Roles = Pick<Expect, "owner" | "admin" | "sender" | "compliance">;

export const MANAGERS: Roles = { owner: "ok", admin: "ok", sender: 403, compliance: 403 };
export const SENDERS: Roles = { owner: "ok", admin: "ok", sender: "ok", compliance: 403 };
export const AUDITORS: Roles = { owner: "ok", admin: "ok", sender: 403, compliance: "ok" };
export const EVERYONE: Roles = { owner: "ok", admin: "ok", sender: "ok", compliance: "ok" };
export const PRIVACY: Roles = { owner: "ok", admin: 403, sender: 403, compliance: "ok" };
export const REDIRECT_MANAGERS: Roles = {
  owner: "redirect",
  admin: "redirect",
  sender: 403,
  compliance: 403,
};

/** Signed-in only: no session (an API key alone included) is 401. */
export function signedIn(roles: Roles, otherOrg: Outcome): Expect {
  return { ...roles, otherOrg, signedOut: 401, apiKey: 401, otherOrgApiKey: 401 };
}

export const demoMessage = (mailbox: string) =>
  JSON.stringify({ mailbox, to: ["rcpt@example.test"], subject: "Matrix", text: "Hello" });
