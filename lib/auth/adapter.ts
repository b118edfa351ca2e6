import "server-only";
import { DrizzleAdapter } from "@auth/drizzle-adapter";
import type { Adapter } from "next-auth/adapters";
import type { Database } from "@/db";
import { getActiveMembership } from "@/db/queries/organizations";
import { deleteSession } from "@/db/queries/sessions";
import { accounts, sessions, users, verificationTokens } from "@/db/schema";

/**
 * Auth.js's adapter, except that it never stores the sign-in provider's tokens: Auth.js would
 * keep them in plaintext, and sign-in needs none of them (mailbox grants are ours, encrypted).
 * A new session starts in the person's oldest organisation; a first sign-in has none yet, and
 * then the empty choice reads as the organisation the sign-in creates. Deleting a session returns
 * it (the drizzle adapter returns nothing), or Auth.js's signOut event would not know whose it was.
 */
export function tokenlessAdapter(db: Database): Adapter {
  const base = DrizzleAdapter(db, {
    usersTable: users,
    accountsTable: accounts,
    sessionsTable: sessions,
    verificationTokensTable: verificationTokens,
  });
  return {
    ...base,
    createSession: async (session) => {
      const first = await getActiveMembership({ db, userId: session.userId });
      // The drizzle adapter inserts whatever columns it is given; its type names only its own.
      const row = { ...session, activeOrgId: first?.orgId ?? null } as typeof session;
      const created = await base.createSession?.(row);
      if (!created) throw new Error("session insert returned nothing");
      return created;
    },
    deleteSession: async (sessionToken) => deleteSession({ db, sessionToken }),
    linkAccount: (account) =>
      base.linkAccount?.({
        ...account,
        access_token: undefined,
        refresh_token: undefined,
        id_token: undefined,
        expires_at: undefined,
        session_state: undefined,
      }),
  };
}
