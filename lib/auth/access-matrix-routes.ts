// The route handlers' rows of the authorization matrix (lib/auth/access-matrix.ts, which
// explains the rows and keeps their order): who may call each route, and how.

import {
  AUDITORS,
  demoMessage,
  EVERYONE,
  type Expect,
  PRIVACY,
  type Row,
  SENDERS,
  signedIn,
} from "./access-matrix-shapes";

// The v1 API answers API keys only (a session is 401); B's key meets A's rows as "not found".
const API_KEYS_ONLY: Expect = {
  owner: 401,
  admin: 401,
  sender: 401,
  compliance: 401,
  signedOut: 401,
  otherOrg: 401,
  apiKey: "ok",
  otherOrgApiKey: 404,
};

export const ROUTE_ROWS: Record<string, Row> = {
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
  "app/api/v1/messages/[id]/route.ts#GET": {
    kind: "route",
    // A message's status, for API keys only; B's key asking for A's message reads "not found".
    expect: API_KEYS_ONLY,
    call: async (t) => {
      const id = await t.newQueuedMessage();
      return { method: "GET", path: `/api/v1/messages/${id}`, params: { id } };
    },
  },
  "app/(signed-in)/(dashboard)/messages/actions.ts#cancelMessageAction": {
    kind: "action",
    expect: signedIn(SENDERS, 404),
    call: async (t) => ({ messageId: await t.newQueuedMessage() }),
  },
  "app/api/v1/messages/route.ts#POST": {
    kind: "route",
    // The API answers API keys only; B's key naming A's mailbox finds no such mailbox.
    expect: API_KEYS_ONLY,
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
};
