import "server-only";
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
import { settleMemberships } from "./members";
import { authSecret } from "./secret";

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

async function authConfig(): Promise<NextAuthConfig> {
  const db = await getDb();
  const e = env();
  return {
    adapter: tokenlessAdapter(db),
    session: { strategy: "database", maxAge: 7 * 24 * 3600, updateAge: 3600 },
    secret: authSecret(),
    trustHost: true,
    useSecureCookies: e.APP_URL.startsWith("https://"),
    providers: signInProviders(e),
    pages: { signIn: "/sign-in", error: "/sign-in" },
    callbacks: {
      session: ({ session, user }) => ({ ...session, user: { ...session.user, id: user.id } }),
    },
    events: {
      signIn: async ({ user, account, profile }) => {
        if (!user.id) return;
        const isEmailVerified = account?.provider === "demo" || profile?.email_verified === true;
        await settleMemberships(db, { ...user, id: user.id }, { isEmailVerified });
        const membership = await getActiveMembership({ db, userId: user.id });
        await writeAuditEvent(db, {
          orgId: membership?.orgId ?? null,
          actor: { type: "user", id: user.id, label: user.email },
          action: "auth.sign_in",
          outcome: "success",
          metadata: { provider: account?.provider },
        });
      },
      signOut: async (message) => {
        const userId = "session" in message ? message.session?.userId : undefined;
        if (!userId) return;
        const membership = await getActiveMembership({ db, userId });
        await writeAuditEvent(db, {
          orgId: membership?.orgId ?? null,
          actor: { type: "user", id: userId },
          action: "auth.sign_out",
          outcome: "success",
        });
      },
    },
  };
}

export const { handlers, auth, signIn, signOut } = NextAuth(authConfig);
