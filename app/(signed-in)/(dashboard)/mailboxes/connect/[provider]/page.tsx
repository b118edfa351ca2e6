import Link from "next/link";
import { notFound } from "next/navigation";
import { PageHeader } from "@/components/page-header";
import { Card } from "@/components/ui/card";
import { getDb } from "@/db";
import { getMailboxForOrg } from "@/db/queries/mailboxes";
import { requirePermission } from "@/lib/auth/session";
import { connectionsBlock } from "@/lib/incidents/switches";
import { getMailProvider } from "@/lib/oauth/providers";
import { explainScopes, WHAT_WE_NEVER_DO } from "@/lib/oauth/scope-explanations";
import { explainWithdrawal, parseWithdrawal } from "@/lib/oauth/withdrawal-words";
import { ConnectForm } from "../../forms";

export const metadata = { title: "Connect a mailbox" };

// Plain words for each refusal the callback can give; nothing from the provider is reflected.
const REASONS: Record<string, (address: string | null) => string> = {
  not_permitted: () =>
    "Your role in this organisation no longer allows connecting mailboxes: it changed, or you left the organisation, while the provider's page was open. Nothing was stored, and Mailwarden did not keep the permission the provider gave.",
  other_account: (address) =>
    `This was a reconnect of ${address ?? "an existing mailbox"}, but a different account was chosen on the provider's page. Nothing was changed. Reconnect again and sign in as ${address ?? "the mailbox's own account"}.`,
  address_in_use: () =>
    "The provider reports an address for this account that is already connected here for a different account. Nothing was changed. If the address really moved to this account, revoke the other mailbox first.",
  connections_blocked: () =>
    "Connecting mailboxes is blocked by an incident switch, so this connection was refused and nothing was stored.",
  revoked_meanwhile: () =>
    "A mailbox of this account was disconnected while this connection was being completed, and the provider ends every permission of the account when one is revoked, so the permission just given ended too. Nothing was stored. Connect again.",
};

const RESULTS: Record<string, string> = {
  denied: "The connection was cancelled at the provider. Nothing was stored.",
  failed: "The provider answered with an error. Nothing was stored; try again in a moment.",
  refused:
    "That response from the provider could not be trusted (used twice, expired, started by someone else or sent by the wrong provider). Nothing was stored; start again.",
};

const OFFLINE_TITLE = explainScopes(["offline_access"])[0]?.title;

type Props = {
  params: Promise<{ provider: string }>;
  searchParams: Promise<{
    mailbox?: string;
    result?: string;
    missing?: string;
    reason?: string;
    withdrawn?: string;
  }>;
};

export default async function ConnectProviderPage({ params, searchParams }: Props) {
  const ctx = await requirePermission("manageMailboxes", "/mailboxes/connect");
  const { provider: providerId } = await params;
  const { mailbox: mailboxId, result, missing, reason, withdrawn } = await searchParams;
  const provider = getMailProvider(providerId);
  if (!provider) notFound();
  const db = await getDb();
  const mailbox = mailboxId ? await getMailboxForOrg({ db, orgId: ctx.orgId, mailboxId }) : null;
  const blocked = await connectionsBlock({ db, orgId: ctx.orgId });
  const refusal = result === "refused" && reason ? REASONS[reason] : undefined;
  // What became of the grant the provider issued, as the callback decided it; anything else in
  // the query is ignored rather than shown.
  const withdrawal = parseWithdrawal(withdrawn);
  const withdrawalText = withdrawal ? explainWithdrawal(provider, withdrawal) : null;
  const requested = explainScopes(provider.scopesToRequest());
  // Only what the callback can name is shown: the mail scopes, and offline access (the scope, or
  // a provider that gave no refresh token); nothing else from the query is reflected.
  const missingItems = (missing ?? "").split(" ");
  const missingScopes = explainScopes(missingItems.filter((s) => provider.mailScopes.includes(s)));
  const missingOffline = missingItems.includes("offline_access")
    ? "scope"
    : missingItems.includes("refresh_token")
      ? "refresh_token"
      : null;

  return (
    <>
      <PageHeader
        title={mailbox ? `Reconnect ${mailbox.address}` : `Connect a ${provider.label} mailbox`}
        description="Before you go to the provider: what Mailwarden will ask for, and why."
      />
      {result === "missing_scope" && (
        <Card className="mb-4 border-red-300 bg-red-50" role="alert">
          <h2 className="font-medium text-red-900">The mailbox was not connected</h2>
          {missingScopes.length > 0 && (
            <p className="mt-1 text-red-900 text-sm">
              The permission to send was not granted, so Mailwarden cannot send from this mailbox.
              Missing:{" "}
              {missingScopes.map((s) => (
                <strong key={s.scope}>{s.title} </strong>
              ))}
              Try again and leave that box ticked on the provider&apos;s screen.
            </p>
          )}
          {missingOffline && (
            <p className="mt-1 text-red-900 text-sm">
              Missing: <strong>{OFFLINE_TITLE}</strong> (offline access).{" "}
              {missingOffline === "scope"
                ? `Without it ${provider.label} gives Mailwarden no refresh token, so the mailbox would stop working within an hour and could not send while you are away. Try again and leave that box ticked on the provider's screen.`
                : `${provider.label} gave Mailwarden no refresh token, so the mailbox would stop working within an hour and could not send while you are away. Try again; if it happens again, remove Mailwarden's access in the account's settings at ${provider.label} first, so that it asks for every permission anew.`}
            </p>
          )}
          {missingScopes.length === 0 && !missingOffline && (
            <p className="mt-1 text-red-900 text-sm">
              A permission Mailwarden needs was not granted. Try again and leave every box ticked on
              the provider&apos;s screen.
            </p>
          )}
          {withdrawalText && <p className="mt-1 text-red-900 text-sm">{withdrawalText}</p>}
        </Card>
      )}
      {refusal && (
        <Card className="mb-4 border-red-300 bg-red-50" role="alert">
          <h2 className="font-medium text-red-900">The mailbox was not connected</h2>
          <p className="mt-1 text-red-900 text-sm">{refusal(mailbox?.address ?? null)}</p>
          {withdrawalText && <p className="mt-1 text-red-900 text-sm">{withdrawalText}</p>}
        </Card>
      )}
      {!refusal && result && RESULTS[result] && (
        <Card className="mb-4 border-amber-300 bg-amber-50" role="alert">
          <p className="text-amber-900 text-sm">{RESULTS[result]}</p>
          {withdrawalText && <p className="mt-1 text-amber-900 text-sm">{withdrawalText}</p>}
        </Card>
      )}
      {blocked && (
        <Card className="mb-4 border-red-300 bg-red-50" role="alert">
          <h2 className="font-medium text-red-900">Connecting mailboxes is blocked (423 Locked)</h2>
          <p className="mt-1 text-red-900 text-sm">
            {blocked.scope === "global"
              ? "An incident switch blocks new mailbox connections for everyone on this Mailwarden while an incident is handled."
              : "An incident switch blocks new mailbox connections for this organisation."}{" "}
            Blocked since {blocked.since.toUTCString()}. Mailboxes already connected keep working.
            {blocked.scope === "organization"
              ? " It is lifted by whoever manages incidents for the organisation."
              : " The block is lifted by this deployment's operators."}
          </p>
        </Card>
      )}
      <Card>
        <h2 className="font-medium">Mailwarden will ask {provider.label} for:</h2>
        <ul className="mt-3 space-y-3" aria-label="Requested permissions">
          {requested.map((s) => (
            <li key={s.scope} className="text-sm">
              <div className="font-medium">{s.title}</div>
              <div className="text-slate-700">{s.allows}</div>
              <div className="text-slate-500">Why: {s.why}</div>
              <code className="break-all text-slate-600 text-xs">{s.scope}</code>
            </li>
          ))}
        </ul>
        <h2 className="mt-6 font-medium">Mailwarden never:</h2>
        <ul className="mt-2 list-disc pl-5 text-sm">
          {WHAT_WE_NEVER_DO.map((line) => (
            <li key={line}>{line}</li>
          ))}
        </ul>
        <p className="mt-4 text-slate-600 text-sm">
          You can untick permissions on the provider&apos;s screen. Without the sending permission
          the mailbox will not be connected. You can revoke access at any time from the mailboxes
          page.
        </p>
        <div className="mt-6 flex items-center gap-4">
          {!blocked && (
            <ConnectForm
              provider={provider.id}
              mailboxId={mailbox?.id}
              label={`Continue to ${provider.label}`}
            />
          )}
          <Link href="/mailboxes" className="text-sm underline">
            Cancel
          </Link>
        </div>
      </Card>
    </>
  );
}
