// The pages' rows of the authorization matrix (lib/auth/access-matrix.ts, which explains the
// rows and keeps their order): who may open each page.

import {
  AUDITORS,
  EVERYONE,
  MANAGERS,
  PRIVACY,
  type Row,
  SENDERS,
  signedIn,
} from "./access-matrix-shapes";

export const PAGE_ROWS: Record<string, Row> = {
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
  "app/(signed-in)/(admin)/security/page.tsx#default": {
    kind: "page",
    // Compliance officers read the posture too; only managers see the form.
    expect: signedIn(AUDITORS, "ok"),
  },
  "app/(signed-in)/(admin)/notifications/page.tsx#default": {
    kind: "page",
    expect: signedIn(MANAGERS, "ok"),
  },
  "app/(signed-in)/(admin)/webhooks/page.tsx#default": {
    kind: "page",
    expect: signedIn(MANAGERS, "ok"),
  },
  "app/(signed-in)/(admin)/webhooks/[endpointId]/page.tsx#default": {
    kind: "page",
    expect: signedIn(MANAGERS, 404),
    call: async (t) => ({ params: { endpointId: await t.newWebhookEndpoint() } }),
  },
};
