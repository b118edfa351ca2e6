import Link from "next/link";
import { IncidentSwitch } from "@/components/incident-switch";
import { PageHeader } from "@/components/page-header";
import { Badge } from "@/components/ui/badge";
import { buttonClass } from "@/components/ui/button";
import { Card } from "@/components/ui/card";
import { EmptyState } from "@/components/ui/empty-state";
import { getDb } from "@/db";
import { listMailboxes } from "@/db/queries/mailboxes";
import type { MailboxStatus } from "@/db/schema";
import { hasPermission } from "@/lib/auth/roles";
import { requirePermission } from "@/lib/auth/session";
import { limitSentence, mailboxLimitedUntil } from "@/lib/mail/quota";
import { listMailProviders } from "@/lib/oauth/providers";
import { formatDateTime } from "@/lib/utils";
import { pauseMailboxAction } from "../actions";
import { RetryMailboxForm, RevokeForm, TestConnectionForm } from "../forms";

export const metadata = { title: "Mailboxes" };

const STATUS: Record<MailboxStatus, { label: string; tone: "good" | "warn" | "bad" | "neutral" }> =
  {
    connected: { label: "Connected", tone: "good" },
    needs_reconnect: { label: "Needs reconnecting", tone: "bad" },
    admin_action_required: { label: "Needs an administrator", tone: "bad" },
    paused: { label: "Paused", tone: "warn" },
    revoked: { label: "Revoked", tone: "neutral" },
  };

type Props = { searchParams: Promise<{ connected?: string; status?: string }> };

const isStatus = (value: string | undefined): value is MailboxStatus =>
  value !== undefined && Object.hasOwn(STATUS, value);

/** `?status=limited`: connected mailboxes at their provider's daily limit (the overview links it). */
const LIMITED = "limited";

export default async function MailboxesPage({ searchParams }: Props) {
  const ctx = await requirePermission("view", "/mailboxes");
  const { connected, status: statusFilter } = await searchParams;
  const all = await listMailboxes({ db: await getDb(), orgId: ctx.orgId });
  // The overview's counts link here filtered by status; an unknown value shows every mailbox.
  const now = Date.now();
  const limitedFilter = statusFilter === LIMITED;
  const filter = isStatus(statusFilter) ? statusFilter : null;
  const mailboxes = limitedFilter
    ? all.filter((m) => m.status === "connected" && mailboxLimitedUntil(m, now))
    : filter
      ? all.filter((m) => m.status === filter)
      : all;
  const canManage = hasPermission(ctx.role, "manageMailboxes");
  const canSend = hasPermission(ctx.role, "send");
  const providers = listMailProviders();
  const justConnected = all.find((m) => m.id === connected);

  return (
    <>
      <PageHeader
        title="Mailboxes"
        description="The mailboxes Mailwarden may send from, and their health."
      >
        {canManage && (
          <div className="flex flex-wrap gap-2">
            {providers.map((p) => (
              <Link
                key={p.id}
                href={`/mailboxes/connect/${p.id}`}
                className={buttonClass("primary")}
              >
                Connect {p.label}
              </Link>
            ))}
          </div>
        )}
      </PageHeader>
      {justConnected && (
        <p role="status" className="mb-4 rounded-md bg-green-50 p-3 text-green-900 text-sm">
          {justConnected.status === "paused"
            ? `${justConnected.address} is reconnected, but it is still paused: nothing is sent from it until it is resumed. ${canManage ? "Resume it with its Resume button below" : "An owner or admin can resume it"} when sending from it should start again.`
            : `${justConnected.address} is connected. Mailwarden can now send from it.`}
        </p>
      )}
      {(filter || limitedFilter) && (
        <p className="mb-4 text-sm">
          Showing {mailboxes.length} of {all.length} mailboxes:{" "}
          {filter ? STATUS[filter].label.toLowerCase() : "at the provider's sending limit"}.{" "}
          <Link className="text-brand-600 underline" href="/mailboxes">
            Show all
          </Link>
        </p>
      )}
      {mailboxes.length === 0 && filter ? (
        <Card>
          <EmptyState title={`No mailbox with the status "${STATUS[filter].label}"`}>
            Every other mailbox is listed when you show all.
          </EmptyState>
        </Card>
      ) : mailboxes.length === 0 ? (
        <Card>
          <EmptyState title="No mailbox yet">
            {canManage
              ? "Connect your first mailbox with a button above: you will see what Mailwarden asks for before you go to the provider."
              : "An owner or admin of your organisation connects mailboxes. Ask them to connect one."}
          </EmptyState>
        </Card>
      ) : (
        <ul className="space-y-3">
          {mailboxes.map((m) => {
            const status = STATUS[m.status];
            const limitedUntil = m.status === "connected" ? mailboxLimitedUntil(m, now) : null;
            return (
              <li key={m.id} id={`mailbox-${m.id}`}>
                <Card>
                  <div className="flex flex-wrap items-start justify-between gap-4">
                    <div className="min-w-0">
                      <h2 className="font-medium">{m.address}</h2>
                      <p className="text-slate-600 text-sm">
                        {providers.find((p) => p.id === m.provider)?.label ?? m.provider}
                        {m.tenant ? ` · tenant ${m.tenant}` : ""} · connected by{" "}
                        {m.connectedByEmail ?? "a former member"}
                      </p>
                      <div className="mt-2 flex items-center gap-2">
                        <Badge tone={status.tone}>{status.label}</Badge>
                        {m.lastErrorCause && m.status !== "connected" && (
                          <span className="text-slate-700 text-sm">{m.lastErrorCause}</span>
                        )}
                        {limitedUntil && (
                          <Badge tone="warn">
                            Limit reached until {formatDateTime(limitedUntil)}
                          </Badge>
                        )}
                      </div>
                      {limitedUntil && (
                        <p className="mt-1 text-slate-700 text-sm" data-testid="limit-reached">
                          {limitSentence(limitedUntil)}
                        </p>
                      )}
                      <dl className="mt-3 grid grid-cols-[auto_minmax(0,1fr)] gap-x-4 gap-y-1 text-sm">
                        <dt className="text-slate-500">Granted scopes</dt>
                        <dd className="font-mono text-xs break-all" data-testid="granted-scopes">
                          {m.grantedScopes.join(" ") || "—"}
                        </dd>
                        <dt className="text-slate-500">Last refresh</dt>
                        <dd>{formatDateTime(m.lastRefreshAt)}</dd>
                        <dt className="text-slate-500">Last use</dt>
                        <dd>{formatDateTime(m.lastUsedAt)}</dd>
                      </dl>
                    </div>
                    {(canManage || canSend) && (
                      <div className="flex flex-wrap items-start gap-2 sm:max-w-xs sm:flex-col sm:items-end">
                        {canSend && m.status === "connected" && (
                          <TestConnectionForm mailboxId={m.id} address={m.address} />
                        )}
                        {canManage && m.status === "admin_action_required" && (
                          <RetryMailboxForm mailboxId={m.id} address={m.address} />
                        )}
                        {canManage && m.status !== "connected" && (
                          <Link
                            className={buttonClass("secondary")}
                            href={`/mailboxes/connect/${m.provider}?mailbox=${m.id}`}
                          >
                            Reconnect
                          </Link>
                        )}
                        {canManage && m.status !== "revoked" && (
                          <IncidentSwitch
                            action={pauseMailboxAction}
                            label={
                              m.status === "paused" ? `Resume ${m.address}` : `Pause ${m.address}`
                            }
                            confirmLabel={m.status === "paused" ? "Yes, resume" : "Yes, pause"}
                            explanation={
                              m.status === "paused"
                                ? "Sending from this mailbox starts again."
                                : "Nothing is sent from this mailbox until it is resumed; its tokens are kept."
                            }
                            fields={{
                              mailboxId: m.id,
                              paused: m.status === "paused" ? "false" : "true",
                            }}
                            askReason={m.status !== "paused"}
                            variant="secondary"
                          />
                        )}
                        {canManage && (
                          <RevokeForm
                            mailboxId={m.id}
                            address={m.address}
                            isRevoked={m.status === "revoked"}
                          />
                        )}
                      </div>
                    )}
                  </div>
                </Card>
              </li>
            );
          })}
        </ul>
      )}
    </>
  );
}
