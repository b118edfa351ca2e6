import { redirect } from "next/navigation";
import type { ReactNode } from "react";
import { AppShell } from "@/components/app-shell";
import { IncidentBanner } from "@/components/incident-banner";
import { NoticeList } from "@/components/notice-list";
import { getDb } from "@/db";
import { countPausedMailboxes } from "@/db/queries/mailboxes";
import { listUnreadNotices } from "@/db/queries/notices";
import { countInvitationsForUser, listMembershipsOfUser } from "@/db/queries/organizations";
import { signOut } from "@/lib/auth/config";
import { hasPermission } from "@/lib/auth/roles";
import { getSessionContext } from "@/lib/auth/session";
import { env } from "@/lib/env";
import { activeSwitches } from "@/lib/incidents/console";
import { navFor } from "@/lib/nav";
import { dismissNoticeAction } from "./notice-actions";
import { switchOrganizationAction } from "./organization-actions";

export const dynamic = "force-dynamic";

// The one layout of every signed-in page, dashboard and admin alike: both need a member.
export default async function SignedInLayout({ children }: { children: ReactNode }) {
  const ctx = await getSessionContext();
  if (!ctx) redirect("/sign-in");
  const { isDemo } = env();
  const db = await getDb();
  const [notices, organizations, pendingInvitations, switchesOn, pausedMailboxes] =
    await Promise.all([
      listUnreadNotices({ db, orgId: ctx.orgId, userId: ctx.user.id }),
      listMembershipsOfUser({ db, userId: ctx.user.id }),
      countInvitationsForUser({ db, userId: ctx.user.id }),
      activeSwitches({ db, orgId: ctx.orgId }),
      countPausedMailboxes({ db, orgId: ctx.orgId }),
    ]);
  async function signOutAction() {
    "use server";
    await signOut({ redirectTo: "/sign-in" });
  }
  return (
    <AppShell
      nav={navFor(ctx.role, { isDemo, pendingInvitations })}
      user={ctx.user}
      orgId={ctx.orgId}
      orgName={ctx.orgName}
      organizations={organizations}
      switchOrganization={switchOrganizationAction}
      role={ctx.role}
      isDemo={isDemo}
      signOut={signOutAction}
    >
      <IncidentBanner
        switches={switchesOn}
        pausedMailboxes={pausedMailboxes}
        canManage={hasPermission(ctx.role, "handleIncidents")}
      />
      <NoticeList notices={notices} dismiss={dismissNoticeAction} />
      {children}
    </AppShell>
  );
}
