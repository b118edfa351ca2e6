import Link from "next/link";
import { PageHeader } from "@/components/page-header";
import { Card } from "@/components/ui/card";
import { getDb } from "@/db";
import { countOverdueDataRequests } from "@/db/queries/privacy";
import { hasPermission, type Permission, ROLE_LABELS } from "@/lib/auth/roles";
import { requirePermission } from "@/lib/auth/session";
import { env } from "@/lib/env";

// Each step names the permission it needs: a person sees only what their role lets them do.
const STEPS: { permission: Permission; href: string; label: string; rest: string }[] = [
  {
    permission: "manageMembers",
    href: "/members",
    label: "Add the people of your team",
    rest: "and give each the role they need.",
  },
  {
    permission: "manageMailboxes",
    href: "/mailboxes",
    label: "Connect a mailbox",
    rest: "— you will see what Mailwarden asks for before you go to the provider.",
  },
  {
    permission: "send",
    href: "/send",
    label: "Send a first message",
    rest: "from a connected mailbox to see that it arrives.",
  },
  {
    permission: "readAudit",
    href: "/activity",
    label: "See who did what",
    rest: "— every sign-in, connection and change is in the activity log.",
  },
];

export default async function OverviewPage() {
  const ctx = await requirePermission("view", "/");
  const { isDemo } = env();
  const steps = STEPS.filter((step) => hasPermission(ctx.role, step.permission));
  const overdue = hasPermission(ctx.role, "handlePrivacy")
    ? await countOverdueDataRequests({ db: await getDb(), orgId: ctx.orgId })
    : 0;
  return (
    <>
      <PageHeader
        title="Overview"
        description={`${ctx.orgName} — you are ${ROLE_LABELS[ctx.role]}.`}
      />
      {overdue > 0 && (
        <p
          role="alert"
          className="mb-4 rounded-md border border-red-300 bg-red-50 p-3 text-red-800 text-sm"
        >
          {overdue} data {overdue === 1 ? "request is" : "requests are"} overdue:{" "}
          <Link className="underline" href="/privacy">
            answer them
          </Link>
          .
        </p>
      )}
      <div className="grid gap-4 md:grid-cols-2">
        <Card>
          <h2 className="font-medium">Next steps</h2>
          <ul className="mt-2 list-disc space-y-1 pl-5 text-sm">
            {steps.map((step) => (
              <li key={step.href}>
                <Link className="text-brand-600 underline" href={step.href}>
                  {step.label}
                </Link>{" "}
                {step.rest}
              </li>
            ))}
          </ul>
        </Card>
        {isDemo && (
          <Card>
            <h2 className="font-medium">Demo mode</h2>
            <p className="mt-2 text-sm">
              Everything runs on this machine: an OAuth2 provider and an SMTP server that accepts
              only XOAUTH2 over TLS. Mail sent here lands in the{" "}
              <Link className="text-brand-600 underline" href="/demo-inbox">
                demo inbox
              </Link>
              .
            </p>
          </Card>
        )}
      </div>
    </>
  );
}
