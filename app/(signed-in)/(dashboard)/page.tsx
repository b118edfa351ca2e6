import Link from "next/link";
import type { ReactNode } from "react";
import { PageHeader } from "@/components/page-header";
import { Card } from "@/components/ui/card";
import { getDb } from "@/db";
import { countLimitedMailboxes, countMailboxesByStatus } from "@/db/queries/mailboxes";
import { countSendsSince } from "@/db/queries/messages";
import { countUnreadNotices } from "@/db/queries/notices";
import { countOverdueDataRequests } from "@/db/queries/privacy";
import type { MailboxStatus } from "@/db/schema";
import { hasPermission, type Permission, ROLE_LABELS } from "@/lib/auth/roles";
import { requirePermission } from "@/lib/auth/session";
import { env } from "@/lib/env";
import { checkHealth } from "@/lib/health";
import { activeSwitches } from "@/lib/incidents/console";
import { securityStatus } from "@/lib/security/status";

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
  {
    permission: "readSecurity",
    href: "/security",
    label: "Check the security page",
    rest: "— each practice with its live status, and what needs attention.",
  },
];

const HEALTH: { status: MailboxStatus; label: string; bad: boolean }[] = [
  { status: "connected", label: "Connected", bad: false },
  { status: "needs_reconnect", label: "Need reconnecting", bad: true },
  { status: "admin_action_required", label: "Need an administrator", bad: true },
  { status: "paused", label: "Paused", bad: true },
];

const SWITCH_LABELS = {
  pause_sending: "All sending is paused",
  block_connections: "New connections are blocked",
} as const;

const DAY_MS = 86_400_000;

function Alert({ children }: { children: ReactNode }) {
  return (
    <p
      role="alert"
      className="mb-4 rounded-md border border-red-300 bg-red-50 p-3 text-red-800 text-sm"
    >
      {children}
    </p>
  );
}

export default async function OverviewPage() {
  const ctx = await requirePermission("view", "/");
  const { isDemo } = env();
  const db = await getDb();
  const now = Date.now();
  const can = (permission: Permission) => hasPermission(ctx.role, permission);
  const steps = STEPS.filter((step) => can(step.permission));
  const [overdue, mailboxes, limited, sends, unread, switchesOn, health, security] =
    await Promise.all([
      can("handlePrivacy") ? countOverdueDataRequests({ db, orgId: ctx.orgId }) : 0,
      countMailboxesByStatus({ db, orgId: ctx.orgId }),
      countLimitedMailboxes({ db, orgId: ctx.orgId }),
      countSendsSince({
        db,
        orgId: ctx.orgId,
        day: new Date(now - DAY_MS),
        fortnight: new Date(now - 14 * DAY_MS),
      }),
      countUnreadNotices({ db, orgId: ctx.orgId, userId: ctx.user.id }),
      activeSwitches({ db, orgId: ctx.orgId }),
      checkHealth(),
      can("readSecurity") ? securityStatus({ db, orgId: ctx.orgId }) : null,
    ]);
  const down = health.dependencies.filter((d) => !d.ok);
  return (
    <>
      <PageHeader
        title="Overview"
        description={`${ctx.orgName} — you are ${ROLE_LABELS[ctx.role]}.`}
      />
      {down.length > 0 && (
        <Alert>
          Temporarily unavailable: {down.map((d) => `${d.label} (${d.detail})`).join(", ")}.
          Sign-ins, connections and sends are refused until it answers again; nothing is let through
          unchecked.
          {can("readSecurity") && (
            <>
              {" "}
              <Link className="underline" href="/security">
                Security page
              </Link>
            </>
          )}
        </Alert>
      )}
      {overdue > 0 && (
        <Alert>
          {overdue} data {overdue === 1 ? "request is" : "requests are"} overdue:{" "}
          <Link className="underline" href="/privacy">
            answer them
          </Link>
          .
        </Alert>
      )}
      <div className="grid gap-4 md:grid-cols-2">
        <Card>
          <h2 className="font-medium">Mailboxes</h2>
          <ul className="mt-3 grid grid-cols-2 gap-3 text-sm">
            {HEALTH.map((h) => {
              const n = mailboxes[h.status];
              return (
                <li key={h.status}>
                  <Link
                    href={`/mailboxes?status=${h.status}`}
                    className="block rounded-md border border-slate-200 p-3 hover:bg-slate-50"
                    aria-label={`${n} ${h.label.toLowerCase()}`}
                  >
                    <span
                      className={`block font-semibold text-2xl ${n > 0 && h.bad ? "text-red-700" : ""}`}
                    >
                      {n}
                    </span>
                    <span className="text-slate-600">{h.label}</span>
                  </Link>
                </li>
              );
            })}
          </ul>
          {limited > 0 && (
            <p className="mt-3 text-sm">
              <Link className="text-brand-600 underline" href="/mailboxes?status=limited">
                {limited} connected {limited === 1 ? "mailbox has" : "mailboxes have"} reached the
                provider's daily sending limit
              </Link>{" "}
              and will send again when the limit ends.
            </p>
          )}
        </Card>
        <Card>
          <h2 className="font-medium">Sending</h2>
          <table className="mt-3 w-full text-sm">
            <thead>
              <tr className="text-left text-slate-500">
                <th scope="col" className="font-normal">
                  Period
                </th>
                <th scope="col" className="font-normal">
                  Sent
                </th>
                <th scope="col" className="font-normal">
                  Failed
                </th>
              </tr>
            </thead>
            <tbody>
              <tr>
                <th scope="row" className="text-left font-normal">
                  Last 24 hours
                </th>
                <td>{sends.day.sent}</td>
                <td className={sends.day.failed > 0 ? "text-red-700" : ""}>{sends.day.failed}</td>
              </tr>
              <tr>
                <th scope="row" className="text-left font-normal">
                  Last 14 days
                </th>
                <td>{sends.fortnight.sent}</td>
                <td className={sends.fortnight.failed > 0 ? "text-red-700" : ""}>
                  {sends.fortnight.failed}
                </td>
              </tr>
            </tbody>
          </table>
          <p className="mt-2 text-sm">
            <Link className="text-brand-600 underline" href="/messages">
              See every message
            </Link>
          </p>
        </Card>
        <Card>
          <h2 className="font-medium">Needs your attention</h2>
          <ul className="mt-2 list-disc space-y-1 pl-5 text-sm">
            <li>
              {unread === 0
                ? "No open notice."
                : `${unread} open notice${unread === 1 ? "" : "s"}, listed above this page.`}
            </li>
            {switchesOn.length === 0 ? (
              <li>No incident switch is on.</li>
            ) : (
              switchesOn.map((s) => (
                <li key={`${s.kind}-${s.scope}`}>
                  {SWITCH_LABELS[s.kind]}
                  {s.scope === "global" ? " for every organisation" : ""}: {s.reason}.
                  {can("handleIncidents") && (
                    <>
                      {" "}
                      <Link className="text-brand-600 underline" href="/incidents">
                        Incidents
                      </Link>
                    </>
                  )}
                </li>
              ))
            )}
            {security && (
              <li>
                {security.attention.length === 0 ? (
                  "The security page shows nothing to act on."
                ) : (
                  <Link className="text-brand-600 underline" href="/security">
                    {security.attention.length} security{" "}
                    {security.attention.length === 1 ? "item needs" : "items need"} attention
                  </Link>
                )}
              </li>
            )}
          </ul>
        </Card>
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
