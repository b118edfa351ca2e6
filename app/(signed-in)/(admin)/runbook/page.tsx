import Link from "next/link";
import type { ReactNode } from "react";
import { PageHeader } from "@/components/page-header";
import { Card } from "@/components/ui/card";
import { requirePermission } from "@/lib/auth/session";

export const metadata = { title: "Runbook" };

type Step = { text: ReactNode; href?: string; where?: string };

function Go({ href, children }: { href: string; children: ReactNode }) {
  return (
    <Link className="font-medium underline" href={href}>
      {children}
    </Link>
  );
}

const PLAYS: Array<{ id: string; title: string; when: string; steps: Step[] }> = [
  {
    id: "token-leak",
    title: "An access or refresh token leaked",
    when: "A token turned up in a log, a ticket, a screenshot or someone else's hands.",
    steps: [
      {
        text: "Pause the mailbox it belongs to, with the reason. Nothing is sent from it meanwhile.",
        href: "/mailboxes",
        where: "Mailboxes › Pause",
      },
      {
        text: "Revoke that mailbox: Mailwarden revokes the grant at the provider (which ends the leaked access and refresh tokens) and destroys its copy. For Microsoft, which has no revocation endpoint, also remove the app's consent where the page says.",
        href: "/mailboxes",
        where: "Mailboxes › Revoke",
      },
      {
        text: "If you cannot tell which mailbox, or several may be affected: revoke every mailbox of the organisation.",
        href: "/incidents",
        where: "Incidents › Revoke every mailbox",
      },
      {
        text: "Read the activity log for sends you do not recognise since the leak.",
        href: "/activity",
        where: "Activity log",
      },
      {
        text: "Connect the mailbox again once the leak is closed; a new grant means new tokens.",
        href: "/mailboxes",
        where: "Mailboxes › Reconnect",
      },
    ],
  },
  {
    id: "key-leak",
    title: "The token encryption key leaked",
    when: "TOKEN_ENCRYPTION_KEYS, a backup of it, or the secret store holding it was exposed.",
    steps: [
      {
        text: "Pause all sending while you work.",
        href: "/incidents",
        where: "Incidents › Pause all sending",
      },
      {
        text: "Revoke every mailbox: with the key and a copy of the database someone can read every stored token, so the grants themselves must end.",
        href: "/incidents",
        where: "Incidents › Revoke every mailbox",
      },
      {
        text: "Put a new key first in TOKEN_ENCRYPTION_KEYS, restart every instance, re-encrypt, then remove the leaked key and restart again.",
        href: "/incidents",
        where: "Incidents › Rotate the token encryption key",
      },
      {
        text: "Rotate the signing secret of every webhook endpoint: re-encryption keeps each secret as it is, and whoever holds the leaked key and a copy of the database could sign webhooks in your name.",
        href: "/webhooks",
        where: "Webhooks › Rotate the secret",
      },
      {
        text: "Release sending and reconnect the mailboxes.",
        href: "/incidents",
        where: "Incidents › Release sending",
      },
    ],
  },
  {
    id: "admin-compromised",
    title: "An administrator's account is compromised",
    when: "Someone else signed in as an owner or admin, or their sign-in account at Google or Microsoft was taken over.",
    steps: [
      {
        text: "Block new connections, so the intruder cannot connect a mailbox of their own.",
        href: "/incidents",
        where: "Incidents › Block new connections",
      },
      {
        text: "Sign everyone out. Every session of every member ends, the intruder's included; only your own browser stays signed in. Waiting invitations are withdrawn, so one the intruder sent cannot let them back in.",
        href: "/incidents",
        where: "Incidents › Sign everyone out",
      },
      {
        text: "Remove the account from the organisation, or lower its role, until its owner has secured it at their identity provider.",
        href: "/members",
        where: "Members",
      },
      {
        text: "Revoke API keys created or used since the compromise, and create new ones.",
        href: "/api-keys",
        where: "API keys",
      },
      {
        text: "Delete webhook endpoints the intruder added (they receive every message event) and rotate the secrets of the others.",
        href: "/webhooks",
        where: "Webhooks",
      },
      {
        text: "Read the activity log for what the account did: members added, roles changed, keys created, webhook endpoints added, mailboxes connected, and refused attempts to link another sign-in account (Mailwarden refuses those, so a stolen session cannot leave a way back in).",
        href: "/activity",
        where: "Activity log",
      },
      {
        text: "If mailboxes may have been misused, revoke them (or every mailbox) and reconnect.",
        href: "/incidents",
        where: "Incidents › Revoke every mailbox",
      },
    ],
  },
  {
    id: "provider-outage",
    title: "A provider has an outage",
    when: "Google or Microsoft is failing sign-ins, token refreshes or SMTP.",
    steps: [
      {
        text: "Check the provider's status page (Google Workspace Status Dashboard, Microsoft 365 Service health). Mailwarden backs off transient errors by itself and keeps each mailbox's status.",
      },
      {
        text: "If failures pile up or you would rather nothing is tried, pause sending; senders get a clear 423 and retry later.",
        href: "/incidents",
        where: "Incidents › Pause all sending",
      },
      {
        text: "Do not revoke or reconnect mailboxes during the outage: their grants are fine, and a reconnect needs the provider to be up.",
      },
      {
        text: "When the provider is back, release sending and look for mailboxes that need reconnecting or an administrator.",
        href: "/mailboxes",
        where: "Mailboxes",
      },
    ],
  },
];

export default async function RunbookPage() {
  await requirePermission("view", "/runbook");
  return (
    <>
      <PageHeader
        title="Runbook"
        description="What to do, in order, when something goes wrong. Each step links to the switch or page that does it."
      />
      <nav aria-label="Situations" className="mb-6 flex flex-wrap gap-2 text-sm">
        {PLAYS.map((p) => (
          <a key={p.id} className="rounded-md border border-slate-300 px-3 py-1" href={`#${p.id}`}>
            {p.title}
          </a>
        ))}
      </nav>
      <div className="space-y-6">
        {PLAYS.map((p) => (
          <Card key={p.id} id={p.id}>
            <h2 className="font-medium text-lg">{p.title}</h2>
            <p className="mb-3 text-slate-600 text-sm">{p.when}</p>
            <ol className="list-decimal space-y-2 pl-5 text-sm">
              {p.steps.map((step, i) => (
                <li key={i}>
                  {step.text}
                  {step.href && (
                    <>
                      {" "}
                      <Go href={step.href}>{step.where ?? "Open"}</Go>
                    </>
                  )}
                </li>
              ))}
            </ol>
          </Card>
        ))}
      </div>
    </>
  );
}
