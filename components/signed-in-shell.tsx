import "server-only";
import { redirect } from "next/navigation";
import type { ReactNode } from "react";
import { dismissNoticeAction } from "@/app/(dashboard)/notice-actions";
import { AppShell } from "@/components/app-shell";
import { NoticeList } from "@/components/notice-list";
import { getDb } from "@/db";
import { listUnreadNotices } from "@/db/queries/notices";
import { signOut } from "@/lib/auth/config";
import { getSessionContext } from "@/lib/auth/session";
import { env } from "@/lib/env";
import { navFor } from "@/lib/nav";

// Shared by the dashboard and admin route groups: both need a signed-in member.
export async function SignedInShell({ children }: { children: ReactNode }) {
  const ctx = await getSessionContext();
  if (!ctx) redirect("/sign-in");
  const { isDemo } = env();
  const notices = await listUnreadNotices({
    db: await getDb(),
    orgId: ctx.orgId,
    userId: ctx.user.id,
  });
  async function signOutAction() {
    "use server";
    await signOut({ redirectTo: "/sign-in" });
  }
  return (
    <AppShell
      nav={navFor(ctx.role, { isDemo })}
      user={ctx.user}
      orgName={ctx.orgName}
      role={ctx.role}
      isDemo={isDemo}
      signOut={signOutAction}
    >
      <NoticeList notices={notices} dismiss={dismissNoticeAction} />
      {children}
    </AppShell>
  );
}
