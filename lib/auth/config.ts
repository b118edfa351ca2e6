import "server-only";
import { cookies } from "next/headers";
import type { NextRequest } from "next/server";
import NextAuth, { type NextAuthConfig } from "next-auth";
import type { Provider } from "next-auth/providers";
import Google from "next-auth/providers/google";
import MicrosoftEntraID from "next-auth/providers/microsoft-entra-id";
import { getDb } from "@/db";
import { getActiveMembership } from "@/db/queries/organizations";
import { writeAuditEvent } from "@/lib/audit/write";
import { readDemoClients } from "@/lib/demo";
import { type Env, env } from "@/lib/env";
import { tokenlessAdapter } from "./adapter";
import { confirmsAccountAddress, settleMemberships } from "./members";
import { type RequestInfo, requestInfo, requestInfoFrom } from "./request";
import { authSecret } from "./secret";

declare module "next-auth" {
  interface Session {
    activeOrgId?: string | null;
  }
}

declare module "next-auth/adapters" {
  interface AdapterSession {
    activeOrgId?: string | null;
  }
}

// Sign-in asks for identity only; mail scopes are asked for when a mailbox is connected.
const SIGN_IN_SCOPE = "openid email profile";

function signInProviders(e: Env): Provider[] {
  const list: Provider[] = [];
  if (e.isDemo) {
    const { signin } = readDemoClients(e.dataDir);
    list.push({
      id: "demo",
      name: "Demo provider",
      type: "oidc",
      issuer: e.demoIssuer,
      clientId: signin.clientId,
      clientSecret: signin.clientSecret,
      checks: ["pkce", "state", "nonce"],
      authorization: { params: { scope: SIGN_IN_SCOPE } },
    });
  }
  if (e.google) {
    list.push(Google({ ...e.google, authorization: { params: { scope: SIGN_IN_SCOPE } } }));
  }
  if (e.microsoft) {
    list.push(
      MicrosoftEntraID({
        clientId: e.microsoft.clientId,
        clientSecret: e.microsoft.clientSecret,
        issuer: `https://login.microsoftonline.com/${e.microsoft.tenant}/v2.0`,
        authorization: { params: { scope: SIGN_IN_SCOPE } },
      }),
    );
  }
  return list;
}

export function signInProviderList(): { id: string; name: string }[] {
  return signInProviders(env()).map((p) => {
    const provider = typeof p === "function" ? p() : p;
    return { id: provider.id, name: provider.name };
  });
}

const isSecure = (e: Env) => e.APP_URL.startsWith("https://");

/** Auth.js's session cookie name for this deployment (the __Secure- prefix over https). */
export function sessionCookieName(): string {
  return `${isSecure(env()) ? "__Secure-" : ""}authjs.session-token`;
}

/**
 * Where the person signing in or out came from. Auth.js hands the request to the configuration
 * of its route handler (the provider's callback, a sign-out POST); its signOut() called from a
 * server action (the app's Sign out button) gets none and runs in that action's request, whose
 * headers next/headers reads.
 */
function callerOf(req: NextRequest | undefined): () => Promise<RequestInfo> {
  return async () => (req ? requestInfoFrom(req.headers) : requestInfo());
}

/** The session cookie of the request Auth.js is handling (or of the server action calling it). */
async function sessionTokenOf(req: NextRequest | undefined): Promise<string | undefined> {
  if (req) return req.cookies.get(sessionCookieName())?.value;
  return (await cookies()).get(sessionCookieName())?.value;
}

async function authConfig(req: NextRequest | undefined): Promise<NextAuthConfig> {
  const db = await getDb();
  const e = env();
  const caller = callerOf(req);
  const adapter = tokenlessAdapter(db);
  return {
    adapter,
    session: { strategy: "database", maxAge: 7 * 24 * 3600, updateAge: 3600 },
    secret: authSecret(),
    trustHost: true,
    useSecureCookies: isSecure(e),
    providers: signInProviders(e),
    pages: { signIn: "/sign-in", error: "/sign-in" },
    callbacks: {
      // Linking another sign-in account to the person already signed in would give whoever holds
      // their session a way back in that outlives "Sign everyone out" and a role restored later
      // (their own Google account, linked to the victim's user): refused and audited. Signing
      // in again with an account already theirs, or with none while signed out, is unchanged.
      signIn: async ({ account }) => {
        if (!account) return true;
        const token = await sessionTokenOf(req);
        const current = token ? await adapter.getSessionAndUser?.(token) : null;
        if (!current) return true;
        const holder = await adapter.getUserByAccount?.({
          provider: account.provider,
          providerAccountId: account.providerAccountId,
        });
        if (holder) return true;
        const membership = await getActiveMembership({ db, userId: current.user.id });
        await writeAuditEvent(db, {
          orgId: membership?.orgId ?? null,
          actor: { type: "user", id: current.user.id, label: current.user.email },
          action: "auth.account_link_refused",
          outcome: "denied",
          request: await caller(),
          metadata: { provider: account.provider },
        });
        return "/sign-in?error=AccountLinkRefused";
      },
      // What auth() returns is also served to the browser at /api/auth/session: name the fields,
      // so the session token (an httpOnly cookie for a reason) and the user row never go there.
      session: ({ session, user }) => ({
        user: { id: user.id, name: user.name, email: user.email, image: user.image },
        expires: session.expires,
        activeOrgId: session.activeOrgId ?? null,
      }),
    },
    events: {
      signIn: async ({ user, account, profile }) => {
        if (!user.id) return;
        const isEmailVerified = confirmsAccountAddress(user.email, account?.provider, profile);
        await settleMemberships(db, { ...user, id: user.id }, { isEmailVerified });
        const membership = await getActiveMembership({ db, userId: user.id });
        await writeAuditEvent(db, {
          orgId: membership?.orgId ?? null,
          actor: { type: "user", id: user.id, label: user.email },
          action: "auth.sign_in",
          outcome: "success",
          request: await caller(),
          metadata: { provider: account?.provider },
        });
      },
      // Auth.js links an account at first sign-in of a new person (not while signed in: refused
      // by the signIn callback above).
      linkAccount: async ({ user, account }) => {
        if (!user.id) return;
        const membership = await getActiveMembership({ db, userId: user.id });
        await writeAuditEvent(db, {
          orgId: membership?.orgId ?? null,
          actor: { type: "user", id: user.id, label: user.email },
          action: "auth.account_linked",
          outcome: "success",
          request: await caller(),
          metadata: { provider: account.provider },
        });
      },
      signOut: async (message) => {
        const session = "session" in message ? message.session : undefined;
        const userId = session?.userId;
        if (!userId) return;
        const membership = await getActiveMembership({
          db,
          userId,
          preferredOrgId: session.activeOrgId,
        });
        await writeAuditEvent(db, {
          orgId: membership?.orgId ?? null,
          actor: { type: "user", id: userId },
          action: "auth.sign_out",
          outcome: "success",
          request: await caller(),
        });
      },
    },
  };
}

export const { handlers, auth, signIn, signOut } = NextAuth(authConfig);
