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

import { PAGE_ROWS } from "./access-matrix-pages";
import { ROUTE_ROWS } from "./access-matrix-routes";
import {
  EVERYONE,
  MANAGERS,
  PRIVACY,
  REDIRECT_MANAGERS,
  type Row,
  SENDERS,
  signedIn,
} from "./access-matrix-shapes";

export {
  CALLERS,
  type Caller,
  type Expect,
  type HttpCall,
  type Outcome,
  type PageCall,
  type Row,
  type Target,
} from "./access-matrix-shapes";

// Loopback port 9 (discard): nothing answers, so a test delivery fails without leaving the host.
// The varying part comes first, so that no organisation's URL is a prefix of another's.
const webhookUrl = (name: string) => `http://127.0.0.1:9/${name}/hooks`;

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

  // ---- Mailboxes ----
  "app/(signed-in)/(dashboard)/mailboxes/actions.ts#startConnectAction": {
    kind: "action",
    // A reconnect of A's mailbox: the owner is sent to the provider; another organisation's
    // person is told there is no such mailbox, and the probe is audited (access.denied).
    expect: signedIn(REDIRECT_MANAGERS, 403),
    call: async (t) => ({ provider: "demo", mailboxId: await t.newMailbox() }),
  },
  "app/(signed-in)/(dashboard)/mailboxes/actions.ts#revokeMailboxAction": {
    kind: "action",
    expect: signedIn(MANAGERS, 403),
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
  "app/(signed-in)/(admin)/activity/retention/actions.ts#setRetentionAction": {
    kind: "action",
    // Another organisation's owner sets their own organisation's retention: A untouched.
    expect: signedIn(MANAGERS, "ok"),
    call: () => ({ auditDays: "400", messageDays: "90", networkDays: "30" }),
  },
  "app/(signed-in)/(dashboard)/api-keys/actions.ts#restrictApiKeyAction": {
    kind: "action",
    // No mailbox named (allow all), so another organisation meets only the unknown key.
    expect: signedIn(MANAGERS, 404),
    call: async (t) => ({ keyId: await t.newApiKey() }),
  },
  "app/(signed-in)/(dashboard)/mailboxes/actions.ts#retryMailboxAction": {
    kind: "action",
    expect: signedIn(MANAGERS, 404),
    call: async (t) => ({ mailboxId: await t.newMailboxNeedingAdmin() }),
  },
  "app/(signed-in)/(admin)/notifications/actions.ts#setNotificationSenderAction": {
    kind: "action",
    // Another organisation's owner naming A's mailbox meets "not a mailbox of yours".
    expect: signedIn(MANAGERS, 400),
    call: (t) => ({ mailboxId: t.mailboxId }),
  },
  "app/(signed-in)/(admin)/security/actions.ts#setClientFactsAction": {
    kind: "action",
    // Another organisation's owner records facts for their own organisation: A untouched.
    expect: signedIn(MANAGERS, "ok"),
    call: () => ({
      googlePublishingStatus: "production",
      googleSecretExpiresOn: "2030-01-31",
      microsoftSecretExpiresOn: "",
    }),
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

  // ---- Webhooks ----
  "app/(signed-in)/(admin)/webhooks/actions.ts#createWebhookEndpointAction": {
    kind: "action",
    // Another organisation's owner registers an endpoint of their own organisation: A untouched.
    expect: signedIn(MANAGERS, "ok"),
    // A URL of its own each time: each organisation's page then shows only its own.
    call: async (t) => {
      await t.roomForWebhookEndpoint();
      return {
        url: webhookUrl(t.newEmail().split("@")[0] ?? "new"),
        description: "matrix",
        events: "message.sent",
      };
    },
  },
  "app/(signed-in)/(admin)/webhooks/actions.ts#updateWebhookEndpointAction": {
    kind: "action",
    expect: signedIn(MANAGERS, 404),
    call: async (t) => ({
      endpointId: await t.newWebhookEndpoint(),
      url: webhookUrl("changed"),
      description: "changed",
      events: ["message.sent", "message.failed"],
      enabled: "true",
    }),
  },
  "app/(signed-in)/(admin)/webhooks/actions.ts#setWebhookEndpointEnabledAction": {
    kind: "action",
    expect: signedIn(MANAGERS, 404),
    call: async (t) => ({ endpointId: await t.newWebhookEndpoint(), enabled: "false" }),
  },
  "app/(signed-in)/(admin)/webhooks/actions.ts#rotateWebhookSecretAction": {
    kind: "action",
    expect: signedIn(MANAGERS, 404),
    call: async (t) => ({ endpointId: await t.newWebhookEndpoint() }),
  },
  "app/(signed-in)/(admin)/webhooks/actions.ts#sendWebhookTestAction": {
    kind: "action",
    expect: signedIn(MANAGERS, 404),
    call: async (t) => ({ endpointId: await t.newWebhookEndpoint() }),
  },
  "app/(signed-in)/(admin)/webhooks/actions.ts#deleteWebhookEndpointAction": {
    kind: "action",
    expect: signedIn(MANAGERS, 404),
    call: async (t) => ({ endpointId: await t.newWebhookEndpoint() }),
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

  // ---- Route handlers (access-matrix-routes.ts) ----
  ...ROUTE_ROWS,

  // ---- Inline server actions ----
  "app/(auth)/sign-in/page.tsx#signInWith": {
    kind: "inline",
    who: "Anyone: it starts an Auth.js sign-in (rate limited per address); it reads no rows.",
  },
  "app/(signed-in)/layout.tsx#signOutAction": {
    kind: "inline",
    who: "The signed-in person, for their own session only (Auth.js signOut reads the cookie).",
  },

  // ---- Pages (access-matrix-pages.ts) ----
  ...PAGE_ROWS,

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
