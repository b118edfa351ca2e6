// Who may call what: every server action, route handler and page, and the answer each kind of
// caller gets. This table is the specification; lib/auth/access-matrix.test.ts finds every
// action, route and page on disk, calls each one as each caller against a real database and
// fails when the answer differs, when another organisation's rows are read or changed, when
// something on disk has no row, or when a row names something that no longer exists.
//
// Adding a row:
//   1. Key: "<file>#<export>": an action's export name, a route's HTTP method, "default" for a
//      page, the function's name for an inline "use server" function. The test's first failure
//      prints the missing keys.
//   2. `expect`: one outcome per caller (all eight, so that nobody is forgotten). The helpers
//      below spell the usual shapes; write the object out when a row is unusual.
//   3. `call`: the smallest input with which the owner's call succeeds, built from `t`, the
//      organisation under test (its ids, and makers for fresh rows when the call uses one up).
//      A member of another organisation sends the same input, so it names the first
//      organisation's rows: that is the cross-organisation attempt.
//
// Callers: the four roles of organisation A; `signedOut` (no session); `otherOrg`, the owner of
// organisation B; `apiKey` and `otherOrgApiKey`, a request carrying only a valid API key of A or
// of B (an API key is not a session).
//
// Outcomes:
//   "ok"        done (an action's ok: true, a 2xx, a page that renders).
//   "redirect"  sent elsewhere, not to sign-in (an OAuth start, the sign-in page when signed in).
//   400         refused for its input (field errors, a 400/422); for another organisation's
//               ids, word for word the answer that ids existing nowhere get (as for 404).
//   401         not signed in: the action's "sign in again", a 401, a redirect to /sign-in.
//   403         the role may not: refused, and the refusal audited for an action or page.
//   404         no such thing here: for another organisation's ids the answer must be the same,
//               word for word, as for ids that exist nowhere.
// Whatever the outcome, another organisation's rows never change and nothing of it appears in
// the answer; after a 401 or 403 the caller's own organisation is unchanged too.

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
};

type Form = Record<string, string | string[]>;

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

type Roles = Pick<Expect, "owner" | "admin" | "sender" | "compliance">;

const MANAGERS: Roles = { owner: "ok", admin: "ok", sender: 403, compliance: 403 };
const SENDERS: Roles = { owner: "ok", admin: "ok", sender: "ok", compliance: 403 };
const AUDITORS: Roles = { owner: "ok", admin: "ok", sender: 403, compliance: "ok" };
const EVERYONE: Roles = { owner: "ok", admin: "ok", sender: "ok", compliance: "ok" };
const PRIVACY: Roles = { owner: "ok", admin: 403, sender: 403, compliance: "ok" };
const REDIRECT_MANAGERS: Roles = {
  owner: "redirect",
  admin: "redirect",
  sender: 403,
  compliance: 403,
};

/** Signed-in only: no session (an API key alone included) is 401. */
function signedIn(roles: Roles, otherOrg: Outcome): Expect {
  return { ...roles, otherOrg, signedOut: 401, apiKey: 401, otherOrgApiKey: 401 };
}

const demoMessage = (mailbox: string) =>
  JSON.stringify({ mailbox, to: ["rcpt@example.test"], subject: "Matrix", text: "Hello" });

export const ACCESS_MATRIX: Record<string, Row> = {
  // ---- Members ----
  "app/(signed-in)/(admin)/members/actions.ts#addMemberAction": {
    kind: "action",
    // Another organisation's owner invites into their own organisation: allowed, and A untouched.
    expect: signedIn(MANAGERS, "ok"),
    call: (t) => ({ email: t.newEmail(), role: "sender" }),
  },
  "app/(signed-in)/(admin)/members/actions.ts#changeRoleAction": {
    kind: "action",
    expect: signedIn(MANAGERS, 404),
    call: async (t) => ({ userId: await t.newMember("sender"), role: "compliance" }),
  },
  "app/(signed-in)/(admin)/members/actions.ts#removeMemberAction": {
    kind: "action",
    expect: signedIn(MANAGERS, 404),
    call: async (t) => ({ userId: await t.newMember("sender") }),
  },
  "app/(signed-in)/(admin)/members/actions.ts#revokeInvitationAction": {
    kind: "action",
    expect: signedIn(MANAGERS, 404),
    call: async (t) => ({ invitationId: await t.newInvitation() }),
  },

  // ---- API keys ----
  "app/(signed-in)/(dashboard)/api-keys/actions.ts#createApiKeyAction": {
    kind: "action",
    // Restricting a key of B to a mailbox of A is refused as an unknown mailbox.
    expect: signedIn(MANAGERS, 400),
    call: (t) => ({ name: "matrix key", mailboxIds: t.mailboxId }),
  },
  "app/(signed-in)/(dashboard)/api-keys/actions.ts#revokeApiKeyAction": {
    kind: "action",
    expect: signedIn(MANAGERS, 404),
    call: async (t) => ({ keyId: await t.newApiKey() }),
  },
  "app/(signed-in)/(dashboard)/api-keys/actions.ts#restrictApiKeyAction": {
    kind: "action",
    // No mailbox named (allow all), so another organisation meets only the unknown key.
    expect: signedIn(MANAGERS, 404),
    call: async (t) => ({ keyId: await t.newApiKey() }),
  },

  // ---- Mailboxes ----
  "app/(signed-in)/(dashboard)/mailboxes/actions.ts#startConnectAction": {
    kind: "action",
    // A reconnect of A's mailbox: the owner is sent to the provider.
    expect: signedIn(REDIRECT_MANAGERS, 404),
    call: async (t) => ({ provider: "demo", mailboxId: await t.newMailbox() }),
  },
  "app/(signed-in)/(dashboard)/mailboxes/actions.ts#retryMailboxAction": {
    kind: "action",
    expect: signedIn(MANAGERS, 404),
    call: async (t) => ({ mailboxId: await t.newMailboxNeedingAdmin() }),
  },
  "app/(signed-in)/(dashboard)/mailboxes/actions.ts#revokeMailboxAction": {
    kind: "action",
    expect: signedIn(MANAGERS, 404),
    call: async (t) => ({ mailboxId: await t.newMailbox() }),
  },
  "app/(signed-in)/(dashboard)/mailboxes/actions.ts#testConnectionAction": {
    kind: "action",
    expect: signedIn(SENDERS, 404),
    call: (t) => ({ mailboxId: t.mailboxId }),
  },

  // ---- Sending and notices ----
  "app/(signed-in)/(dashboard)/send/actions.ts#sendTestMessageAction": {
    kind: "action",
    expect: signedIn(SENDERS, 404),
    call: (t) => ({
      mailbox: t.mailboxId,
      to: "rcpt@example.test",
      subject: "Matrix",
      text: "Hello",
    }),
  },
  "app/(signed-in)/notice-actions.ts#dismissNoticeAction": {
    kind: "action",
    expect: signedIn(EVERYONE, 404),
    call: async (t) => ({ noticeId: await t.newNotice() }),
  },

  // ---- Invitations and the active organisation ----
  "app/(signed-in)/(dashboard)/invitations/actions.ts#acceptInvitationAction": {
    kind: "action",
    // Only the invitee answers: B's owner holding A's invitation id finds no such invitation.
    expect: signedIn(
      { owner: "redirect", admin: "redirect", sender: "redirect", compliance: "redirect" },
      404,
    ),
    call: async (t) => ({ invitationId: await t.newInvitationToMe() }),
  },
  "app/(signed-in)/(dashboard)/invitations/actions.ts#declineInvitationAction": {
    kind: "action",
    expect: signedIn(
      { owner: "redirect", admin: "redirect", sender: "redirect", compliance: "redirect" },
      404,
    ),
    call: async (t) => ({ invitationId: await t.newInvitationToMe() }),
  },
  "app/(signed-in)/(admin)/notifications/actions.ts#setNotificationSenderAction": {
    kind: "action",
    // Another organisation's owner naming A's mailbox meets "not a mailbox of yours".
    expect: signedIn(MANAGERS, 400),
    call: (t) => ({ mailboxId: t.mailboxId }),
  },
  "app/(signed-in)/(admin)/activity/retention/actions.ts#setRetentionAction": {
    kind: "action",
    // Another organisation's owner sets their own organisation's retention: A untouched.
    expect: signedIn(MANAGERS, "ok"),
    call: () => ({ days: "400" }),
  },
  "app/(signed-in)/organization-actions.ts#switchOrganizationAction": {
    kind: "action",
    // Switching into an organisation one is not a member of is refused as an unknown choice.
    expect: signedIn(
      { owner: "redirect", admin: "redirect", sender: "redirect", compliance: "redirect" },
      400,
    ),
    call: async (t) => ({ orgId: await t.newOrganizationOfMine() }),
  },

  // ---- Data requests ----
  "app/(signed-in)/(admin)/privacy/actions.ts#recordRequestAction": {
    kind: "action",
    // Recording sends the officer to the new request; B's owner records one in B, A untouched.
    expect: signedIn(
      { owner: "redirect", admin: 403, sender: 403, compliance: "redirect" },
      "redirect",
    ),
    call: (t) => ({
      kind: "export",
      email: t.newEmail(),
      receivedOn: new Date().toISOString().slice(0, 10),
    }),
  },
  "app/(signed-in)/(admin)/privacy/actions.ts#eraseAction": {
    kind: "action",
    expect: signedIn(PRIVACY, 404),
    call: async (t) => ({ requestId: await t.newDataRequest("erasure"), confirm: "erase" }),
  },

  // ---- Route handlers ----
  "app/api/health/route.ts#GET": {
    kind: "route",
    expect: {
      ...EVERYONE,
      signedOut: "ok",
      otherOrg: "ok",
      apiKey: "ok",
      otherOrgApiKey: "ok",
    },
    call: () => ({ method: "GET", path: "/api/health" }),
  },
  "app/api/auth/[...nextauth]/route.ts#GET": {
    kind: "route",
    // Everyone may ask who they are; the answer is only ever the caller's own session.
    expect: {
      ...EVERYONE,
      signedOut: "ok",
      otherOrg: "ok",
      apiKey: "ok",
      otherOrgApiKey: "ok",
    },
    call: () => ({ method: "GET", path: "/api/auth/session", params: { nextauth: ["session"] } }),
  },
  "app/api/auth/[...nextauth]/route.ts#POST": {
    kind: "route",
    // A sign-out without the CSRF token is sent back to sign-in and ends no session.
    expect: {
      owner: 401,
      admin: 401,
      sender: 401,
      compliance: 401,
      signedOut: 401,
      otherOrg: 401,
      apiKey: 401,
      otherOrgApiKey: 401,
    },
    call: () => ({
      method: "POST",
      path: "/api/auth/signout",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: "callbackUrl=%2F",
      params: { nextauth: ["signout"] },
    }),
  },
  "app/api/oauth/[provider]/callback/route.ts#GET": {
    kind: "route",
    // Only the person who started a connection completes it; anyone else is refused.
    expect: {
      owner: "ok",
      admin: 403,
      sender: 403,
      compliance: 403,
      signedOut: 403,
      otherOrg: 403,
      apiKey: 403,
      otherOrgApiKey: 403,
    },
    call: async (t) => {
      const url = new URL(await t.newCallback());
      return { method: "GET", path: `${url.pathname}${url.search}`, params: { provider: "demo" } };
    },
    outcomeOf: (location) => {
      if (location.pathname === "/mailboxes" && location.searchParams.has("connected")) return "ok";
      return location.searchParams.get("result") === "refused" ? 403 : 400;
    },
  },
  "app/(signed-in)/(admin)/activity/export/route.ts#GET": {
    kind: "route",
    // Always the caller's own organisation's log: B's owner downloads B's.
    expect: signedIn(AUDITORS, "ok"),
    call: () => ({ method: "GET", path: "/activity/export?format=csv" }),
  },
  "app/api/v1/messages/route.ts#POST": {
    kind: "route",
    // The API answers API keys only; B's key naming A's mailbox finds no such mailbox.
    expect: {
      owner: 401,
      admin: 401,
      sender: 401,
      compliance: 401,
      signedOut: 401,
      otherOrg: 401,
      apiKey: "ok",
      otherOrgApiKey: 404,
    },
    call: (t) => ({
      method: "POST",
      path: "/api/v1/messages",
      headers: { "content-type": "application/json" },
      body: demoMessage(t.mailboxId),
    }),
  },

  "app/(signed-in)/(admin)/privacy/[requestId]/export/route.ts#GET": {
    kind: "route",
    expect: signedIn(PRIVACY, 404),
    call: async (t) => {
      const requestId = await t.newDataRequest("export");
      return { method: "GET", path: `/privacy/${requestId}/export`, params: { requestId } };
    },
  },
  "app/(signed-in)/(admin)/privacy/[requestId]/receipt/route.ts#GET": {
    kind: "route",
    expect: signedIn(PRIVACY, 404),
    call: async (t) => {
      const requestId = await t.newDataRequest("erasure", { completed: true });
      return { method: "GET", path: `/privacy/${requestId}/receipt`, params: { requestId } };
    },
  },
  "app/(signed-in)/(dashboard)/profile/export/route.ts#GET": {
    kind: "route",
    // Everyone's own data only: B's owner gets B's, nothing of A.
    expect: signedIn(EVERYONE, "ok"),
    call: () => ({ method: "GET", path: "/profile/export" }),
  },

  // ---- Inline server actions ----
  "app/(auth)/sign-in/page.tsx#signInWith": {
    kind: "inline",
    who: "Anyone: it starts an Auth.js sign-in (rate limited per address); it reads no rows.",
  },
  "app/(signed-in)/layout.tsx#signOutAction": {
    kind: "inline",
    who: "The signed-in person, for their own session only (Auth.js signOut reads the cookie).",
  },

  // ---- Pages ----
  "app/(auth)/sign-in/page.tsx#default": {
    kind: "page",
    expect: {
      owner: "redirect",
      admin: "redirect",
      sender: "redirect",
      compliance: "redirect",
      signedOut: "ok",
      otherOrg: "redirect",
      apiKey: "ok",
      otherOrgApiKey: "ok",
    },
  },
  "app/(signed-in)/(dashboard)/page.tsx#default": {
    kind: "page",
    expect: signedIn(EVERYONE, "ok"),
  },
  "app/(signed-in)/(dashboard)/mailboxes/(list)/page.tsx#default": {
    kind: "page",
    expect: signedIn(EVERYONE, "ok"),
    call: (t) => ({ searchParams: { connected: t.mailboxId } }),
  },
  "app/(signed-in)/(dashboard)/mailboxes/connect/[provider]/page.tsx#default": {
    kind: "page",
    // Asked to reconnect A's mailbox, B's owner sees a plain "connect": nothing of A's shown.
    expect: signedIn(MANAGERS, "ok"),
    call: (t) => ({ params: { provider: "demo" }, searchParams: { mailbox: t.mailboxId } }),
  },
  "app/(signed-in)/(dashboard)/api-keys/page.tsx#default": {
    kind: "page",
    expect: signedIn(MANAGERS, "ok"),
  },
  "app/(signed-in)/(dashboard)/messages/page.tsx#default": {
    kind: "page",
    expect: signedIn(EVERYONE, "ok"),
  },
  "app/(signed-in)/(dashboard)/demo-inbox/page.tsx#default": {
    kind: "page",
    expect: signedIn(EVERYONE, "ok"),
  },
  "app/(signed-in)/(dashboard)/invitations/page.tsx#default": {
    kind: "page",
    expect: signedIn(EVERYONE, "ok"),
  },
  "app/(signed-in)/(dashboard)/send/page.tsx#default": {
    kind: "page",
    expect: signedIn(SENDERS, "ok"),
  },
  "app/(signed-in)/(admin)/activity/page.tsx#default": {
    kind: "page",
    expect: signedIn(AUDITORS, "ok"),
  },
  "app/(signed-in)/(admin)/activity/[id]/page.tsx#default": {
    kind: "page",
    expect: signedIn(AUDITORS, 404),
    call: async (t) => ({ params: { id: await t.newAuditEvent() } }),
  },
  "app/(signed-in)/(admin)/activity/retention/page.tsx#default": {
    kind: "page",
    expect: signedIn(MANAGERS, "ok"),
  },
  "app/(signed-in)/(admin)/notifications/page.tsx#default": {
    kind: "page",
    expect: signedIn(MANAGERS, "ok"),
  },
  "app/(signed-in)/(admin)/members/page.tsx#default": {
    kind: "page",
    expect: signedIn(MANAGERS, "ok"),
  },
  "app/(signed-in)/(admin)/privacy/page.tsx#default": {
    kind: "page",
    expect: signedIn(PRIVACY, "ok"),
  },
  "app/(signed-in)/(admin)/privacy/[requestId]/page.tsx#default": {
    kind: "page",
    expect: signedIn(PRIVACY, 404),
    call: async (t) => ({ params: { requestId: await t.newDataRequest("erasure") } }),
  },
  "app/(signed-in)/(dashboard)/profile/page.tsx#default": {
    kind: "page",
    expect: signedIn(EVERYONE, "ok"),
  },
  "app/(signed-in)/(admin)/incidents/page.tsx#default": {
    kind: "page",
    expect: signedIn(MANAGERS, "ok"),
  },
  "app/(signed-in)/(admin)/runbook/page.tsx#default": {
    kind: "page",
    expect: signedIn(EVERYONE, "ok"),
  },

  // ---- Incidents (last: pulling a switch changes the organisation for the rows after it) ----
  "app/(signed-in)/(dashboard)/mailboxes/actions.ts#pauseMailboxAction": {
    kind: "action",
    expect: signedIn(MANAGERS, 404),
    call: async (t) => ({ mailboxId: await t.newMailbox(), paused: "true", reason: "matrix" }),
  },
  "app/(signed-in)/(admin)/incidents/actions.ts#setSwitchAction": {
    kind: "action",
    // Another organisation's owner pulls the switch of their own organisation: A untouched.
    expect: signedIn(MANAGERS, "ok"),
    call: () => ({ kind: "block_connections", on: "false" }),
  },
  "app/(signed-in)/(admin)/incidents/actions.ts#setGlobalSwitchAction": {
    kind: "action",
    // Only operators named in OPERATOR_EMAILS; the matrix's people are none.
    expect: signedIn({ owner: 403, admin: 403, sender: 403, compliance: 403 }, 403),
    call: () => ({ kind: "pause_sending", on: "true", reason: "matrix" }),
  },
  "app/(signed-in)/(admin)/incidents/actions.ts#reencryptAction": {
    kind: "action",
    expect: signedIn({ owner: 403, admin: 403, sender: 403, compliance: 403 }, 403),
    call: () => ({}),
  },
  "app/(signed-in)/(admin)/incidents/actions.ts#cancelRevokeAllAction": {
    kind: "action",
    expect: signedIn(MANAGERS, "ok"),
    call: () => ({}),
  },
  "app/(signed-in)/(admin)/incidents/actions.ts#signEveryoneOutAction": {
    kind: "action",
    // Ends the sessions of A's members only (the caller's own kept); B's owner ends B's.
    expect: signedIn(MANAGERS, "ok"),
    call: () => ({ reason: "matrix" }),
  },
  "app/(signed-in)/(admin)/incidents/actions.ts#revokeAllAction": {
    kind: "action",
    expect: signedIn(MANAGERS, "ok"),
    call: () => ({ reason: "matrix" }),
  },
};
