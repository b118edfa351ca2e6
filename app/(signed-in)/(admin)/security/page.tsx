import Link from "next/link";
import { PageHeader } from "@/components/page-header";
import { Badge } from "@/components/ui/badge";
import { Card } from "@/components/ui/card";
import { getDb } from "@/db";
import { hasPermission } from "@/lib/auth/roles";
import { requirePermission } from "@/lib/auth/session";
import { type Check, type Level, securityStatus } from "@/lib/security/status";
import { ClientFactsForm } from "./form";

export const metadata = { title: "Security" };

const LEVELS: Record<Level, { label: string; tone: "good" | "neutral" | "warn" | "bad" }> = {
  ok: { label: "OK", tone: "good" },
  info: { label: "Note", tone: "neutral" },
  warning: { label: "Warning", tone: "warn" },
  alarm: { label: "Alarm", tone: "bad" },
};

// What we ask of the people who use the dashboard, each with its reason.
const GUIDANCE: { ask: string; why: string }[] = [
  {
    ask: "Protect the account you sign in with by a second factor at Google or Microsoft.",
    why: "Mailwarden has no password of its own: whoever holds that account holds your role here.",
  },
  {
    ask: "Connect only mailboxes you are responsible for, and read what is asked before you go to the provider.",
    why: "A connected mailbox can send as that address; the grant is as strong as the mailbox itself.",
  },
  {
    ask: "Keep API keys in a secret manager, give each service its own key, and revoke a key you no longer use.",
    why: "A key is shown once and sends without a person present; one key per service lets you cut off one without stopping the others.",
  },
  {
    ask: "Sign out on shared computers.",
    why: "A session lasts until it is signed out or ended by an administrator.",
  },
  {
    ask: "Tell an administrator at once when something looks wrong: a send you did not make, a sign-in you do not recognise.",
    why: "The switches on the Incidents page stop everything in a minute, but only once someone pulls them.",
  },
  {
    ask: "When a mailbox asks to be reconnected, reconnect it with the mailbox's own account.",
    why: "Until then nothing can be sent from it; another account is refused.",
  },
];

function CheckLine({ check }: { check: Check }) {
  const level = LEVELS[check.level];
  return (
    <li className="flex flex-wrap items-start gap-2 text-sm">
      <Badge tone={level.tone}>{level.label}</Badge>
      <span className="min-w-0 flex-1">
        {check.text}
        {check.href && (
          <>
            {" "}
            <Link className="text-brand-600 underline" href={check.href}>
              {check.linkText ?? "Open"}
            </Link>
          </>
        )}
      </span>
    </li>
  );
}

export default async function SecurityPage() {
  const ctx = await requirePermission("readSecurity", "/security");
  const status = await securityStatus({ db: await getDb(), orgId: ctx.orgId });
  const canEdit = hasPermission(ctx.role, "manageSettings");
  return (
    <>
      <PageHeader
        title="Security"
        description="How Mailwarden protects your organisation's mail, each practice with what this deployment shows right now."
      />
      <section aria-labelledby="attention" className="mb-6">
        <h2 id="attention" className="sr-only">
          Needs attention
        </h2>
        {status.attention.length > 0 ? (
          <Card className="border-amber-300 bg-amber-50">
            <p className="font-medium">
              {status.attention.length} thing{status.attention.length === 1 ? " needs" : "s need"}{" "}
              attention
            </p>
            <ul className="mt-2 space-y-2">
              {status.attention.map((check) => (
                <CheckLine key={check.text} check={check} />
              ))}
            </ul>
          </Card>
        ) : (
          <p role="status" className="rounded-md bg-green-50 p-3 text-green-900 text-sm">
            Nothing needs attention.
          </p>
        )}
      </section>

      <section aria-labelledby="client-facts" className="mb-6">
        <Card>
          <h2 id="client-facts" className="font-medium">
            What only an administrator knows about the OAuth clients
          </h2>
          <p className="mt-1 mb-4 text-slate-600 text-sm">
            No provider tells Mailwarden these, so it asks you. A Google app left in
            &ldquo;Testing&rdquo; loses every refresh token after 7 days; an expired client secret
            stops sign-in and every token renewal. Mailwarden warns 30 days before.
          </p>
          {canEdit ? (
            <ClientFactsForm facts={status.facts} />
          ) : (
            <p className="text-sm">An owner or admin enters these.</p>
          )}
        </Card>
      </section>

      <section aria-labelledby="practices" className="mb-6">
        <h2 id="practices" className="mb-3 font-medium text-lg">
          The practices
        </h2>
        <ol className="space-y-3">
          {status.practices.map((practice) => (
            <li key={practice.number}>
              <Card>
                <h3 className="font-medium">
                  {practice.number}. {practice.title}
                </h3>
                <p className="mt-1 text-slate-700 text-sm">{practice.explanation}</p>
                <ul className="mt-3 space-y-2">
                  {practice.checks.map((check) => (
                    <CheckLine key={check.text} check={check} />
                  ))}
                </ul>
              </Card>
            </li>
          ))}
        </ol>
      </section>

      <section aria-labelledby="guidance">
        <Card>
          <h2 id="guidance" className="font-medium">
            What we ask of everyone who uses this dashboard
          </h2>
          <ul className="mt-3 space-y-3 text-sm">
            {GUIDANCE.map((g) => (
              <li key={g.ask}>
                <p className="font-medium">{g.ask}</p>
                <p className="text-slate-600">Why: {g.why}</p>
              </li>
            ))}
          </ul>
        </Card>
      </section>
    </>
  );
}
