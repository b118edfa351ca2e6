import Link from "next/link";
import type { ReactNode } from "react";
import type { ActionResult } from "@/lib/auth/action";
import { ROLE_LABELS, type Role } from "@/lib/auth/roles";
import type { NavItem } from "@/lib/nav";
import { MainNav } from "./main-nav";
import { type OrgChoice, OrgSwitcher } from "./org-switcher";
import { PageOrgProvider } from "./page-org";

type Props = {
  nav: NavItem[];
  user: { email: string | null; name: string | null };
  orgId: string;
  orgName: string;
  organizations: OrgChoice[];
  switchOrganization: (previous: ActionResult, formData: FormData) => Promise<ActionResult>;
  role: Role;
  isDemo: boolean;
  signOut: () => Promise<void>;
  children: ReactNode;
};

export function AppShell({
  nav,
  user,
  orgId,
  orgName,
  organizations,
  switchOrganization,
  role,
  isDemo,
  signOut,
  children,
}: Props) {
  // Every form on the page sends `orgId` back (components/page-org.tsx).
  return (
    <PageOrgProvider orgId={orgId}>
      <div className="min-h-screen bg-slate-50 text-slate-900">
        {isDemo && (
          <div className="bg-amber-100 px-4 py-1 text-center text-amber-900 text-xs">
            Demo mode: a local OAuth provider and SMTP server stand in for Google and Microsoft. No
            real mail leaves this machine.
          </div>
        )}
        <header className="border-slate-200 border-b bg-white">
          <div className="mx-auto flex max-w-6xl flex-wrap items-center justify-between gap-x-4 gap-y-2 px-4 py-3">
            <Link href="/" className="font-semibold text-lg">
              Mailwarden
            </Link>
            <div className="flex min-w-0 flex-wrap items-center gap-x-3 gap-y-1 text-sm">
              <span className="min-w-0 break-words">
                {user.email} ·{" "}
                <OrgSwitcher
                  organizations={organizations}
                  activeOrgId={orgId}
                  activeOrgName={orgName}
                  switchOrganization={switchOrganization}
                />{" "}
                · <span data-testid="current-role">{ROLE_LABELS[role]}</span>
              </span>
              <form action={signOut}>
                <button type="submit" className="text-brand-600 underline">
                  Sign out
                </button>
              </form>
            </div>
          </div>
        </header>
        <div className="mx-auto flex max-w-6xl flex-col gap-4 px-4 py-4 md:flex-row md:gap-6 md:py-6">
          <MainNav items={nav} />
          <main className="min-w-0 flex-1">{children}</main>
        </div>
      </div>
    </PageOrgProvider>
  );
}
