import Link from "next/link";
import { AutoRefresh } from "@/components/auto-refresh";
import { IncidentSwitch } from "@/components/incident-switch";
import { JobProgress } from "@/components/job-progress";
import { PageHeader } from "@/components/page-header";
import { Badge } from "@/components/ui/badge";
import { Card } from "@/components/ui/card";
import { Table } from "@/components/ui/table";
import { getDb } from "@/db";
import { countItemResults, latestJob, listJobItems } from "@/db/queries/jobs";
import { countMembersInOtherOrgs } from "@/db/queries/sessions";
import type { Job } from "@/db/schema";
import { isOperator } from "@/lib/auth/operators";
import { requirePermission } from "@/lib/auth/session";
import { keyring } from "@/lib/crypto/runtime";
import { activeSwitches } from "@/lib/incidents/console";
import type { SwitchKind } from "@/lib/incidents/switches";
import { resumeAbandonedJobs } from "@/lib/jobs";
import { countCellsByKey, REENCRYPT } from "@/lib/jobs/reencrypt";
import { providerRevocationWarning, REVOKE_ALL, REVOKE_RESULT_LABELS } from "@/lib/jobs/revoke-all";
import { MAX_ITEM_ATTEMPTS } from "@/lib/jobs/runner";
import { formatDateTime } from "@/lib/utils";
import {
  cancelRevokeAllAction,
  reencryptAction,
  revokeAllAction,
  setGlobalSwitchAction,
  setSwitchAction,
  signEveryoneOutAction,
} from "./actions";

export const metadata = { title: "Incidents" };
export const dynamic = "force-dynamic";

const SWITCHES: Array<{
  kind: SwitchKind;
  on: string;
  off: string;
  onText: string;
  offText: string;
}> = [
  {
    kind: "pause_sending",
    on: "Pause all sending",
    off: "Release sending",
    onText:
      "Every send stops at once, API and test sends alike: the API answers 423, the dashboard says sending is paused, and nothing new is queued. Messages already queued wait; if the key that queued them leaked, revoke it too.",
    offText:
      "Sending resumes on the next request. Queued messages go out, except those whose deadline passed while they waited: they fail instead of going out late.",
  },
  {
    kind: "block_connections",
    on: "Block new connections",
    off: "Unblock connections",
    onText:
      "Nobody can connect or reconnect a mailbox until the block is lifted. Mailboxes already connected keep sending.",
    offText: "Mailboxes can be connected again.",
  },
];

/** Why a job is not simply done, in plain words; `items` names what one item is. */
function jobProblem(job: Job, errors: number, items: [string, string]) {
  if (job.status === "queued" && job.error)
    return `${job.error}. It resumes on its own within a minute.`;
  if (job.status === "failed" && errors > 0)
    return `${errors} ${errors === 1 ? items[0] : items[1]} failed after ${MAX_ITEM_ATTEMPTS} attempts each and ${errors === 1 ? "was" : "were"} left as ${errors === 1 ? "it was" : "they were"}. Start it again to retry.`;
  if (job.status === "failed") return job.error ?? "It stopped with an error.";
  return null;
}

async function jobView(
  db: Awaited<ReturnType<typeof getDb>>,
  job: Job,
  items: [string, string],
  warning: string | null = null,
) {
  const counts = await countItemResults({ db, jobId: job.id });
  const errors = counts.find((c) => c.result === "error")?.count ?? 0;
  return {
    problem: [jobProblem(job, errors, items), warning].filter(Boolean).join(" ") || null,
    status: job.status,
    total: job.total,
    finished: counts.reduce((n, c) => n + c.count, 0),
    counts: counts.map((c) => ({
      label: REVOKE_RESULT_LABELS[c.result] ?? c.result,
      count: c.count,
    })),
  };
}

const isActive = (job: Job | null) => job?.status === "queued" || job?.status === "running";

export default async function IncidentsPage() {
  const ctx = await requirePermission("handleIncidents", "/incidents");
  const db = await getDb();
  // A job whose process died is taken over by whoever looks next.
  resumeAbandonedJobs(db).catch(() => {});
  const operator = await isOperator({ db, userId: ctx.user.id });
  const [switchesOn, revokeJob, otherOrgMembers, reencryptJob, keyCounts] = await Promise.all([
    activeSwitches({ db, orgId: ctx.orgId }),
    latestJob({ db, kind: REVOKE_ALL, orgId: ctx.orgId }),
    countMembersInOtherOrgs({ db, orgId: ctx.orgId }),
    operator ? latestJob({ db, kind: REENCRYPT, orgId: null }) : null,
    operator ? countCellsByKey(db) : [],
  ]);
  const revokeView =
    revokeJob &&
    (await jobView(
      db,
      revokeJob,
      ["mailbox", "mailboxes"],
      await providerRevocationWarning({ db, orgId: ctx.orgId, jobId: revokeJob.id }),
    ));
  const revokeItems = revokeJob ? await listJobItems({ db, jobId: revokeJob.id }) : [];
  const reencryptView =
    reencryptJob && (await jobView(db, reencryptJob, ["sealed row", "sealed rows"]));
  const polling = isActive(revokeJob) || isActive(reencryptJob);
  const orgSwitch = (kind: SwitchKind) =>
    switchesOn.find((s) => s.kind === kind && s.scope === "organization");
  const globalSwitch = (kind: SwitchKind) =>
    switchesOn.find((s) => s.kind === kind && s.scope === "global");

  return (
    <>
      {polling && <AutoRefresh />}
      <PageHeader
        title="Incidents"
        description="Stop things first, then work out what happened. Each switch takes effect on the very next request in every instance, asks why, and is recorded in the activity log."
      />

      <section aria-labelledby="switches" className="mb-6 grid gap-4 md:grid-cols-2">
        <h2 id="switches" className="sr-only">
          Switches
        </h2>
        {SWITCHES.map((s) => {
          const on = orgSwitch(s.kind);
          return (
            <Card key={s.kind} className="space-y-2">
              <div className="flex items-center justify-between gap-2">
                <h3 className="font-medium">{s.on}</h3>
                <Badge tone={on ? "warn" : "neutral"}>{on ? "On" : "Off"}</Badge>
              </div>
              {on && (
                <p className="text-slate-700 text-sm">
                  Since {formatDateTime(on.since)}. Reason: {on.reason}
                </p>
              )}
              <IncidentSwitch
                action={setSwitchAction}
                label={on ? s.off : s.on}
                confirmLabel={on ? `Yes, ${s.off.toLowerCase()}` : `Yes, ${s.on.toLowerCase()}`}
                explanation={on ? s.offText : s.onText}
                fields={{ kind: s.kind, on: on ? "false" : "true" }}
                askReason={!on}
                variant={on ? "secondary" : "danger"}
              />
            </Card>
          );
        })}

        <Card className="space-y-2">
          <h3 className="font-medium">Sign everyone out</h3>
          <p className="text-slate-700 text-sm">
            Ends every session of every member of this organisation, yours on other devices
            included. Only this browser stays signed in, so that you can go on. Waiting invitations
            are withdrawn too: one sent from a stolen session would let its sender back in.
            {otherOrgMembers > 0 &&
              ` ${otherOrgMembers} of your members also belong to other organisations: a session is a person's, so they are signed out there too.`}
          </p>
          <IncidentSwitch
            action={signEveryoneOutAction}
            label="Sign everyone out (you stay signed in here)"
            confirmLabel="Yes, sign everyone out"
            explanation="Everyone must sign in again. API keys are not affected: revoke them on the API keys page."
          />
        </Card>

        <Card className="space-y-3">
          <h3 className="font-medium">Revoke every mailbox</h3>
          <p className="text-slate-700 text-sm">
            Revokes Mailwarden's access at each mailbox's provider, 8 at a time, and destroys the
            tokens here whatever the provider answers. Each mailbox must then be connected again.
            Survives a restart; cancel stops before the next mailbox.
          </p>
          {revokeView && <JobProgress job={revokeView} label="Revocation" />}
          {isActive(revokeJob) ? (
            <IncidentSwitch
              action={cancelRevokeAllAction}
              label="Cancel the revocation"
              confirmLabel="Yes, cancel"
              explanation="Mailboxes already revoked stay revoked; the others keep their tokens."
              askReason={false}
              variant="secondary"
            />
          ) : (
            <IncidentSwitch
              action={revokeAllAction}
              label="Revoke every mailbox"
              confirmLabel="Yes, revoke every mailbox"
              explanation="Sending stops for every mailbox of this organisation until it is connected again."
            />
          )}
        </Card>
      </section>

      {revokeItems.length > 0 && (
        <Card className="mb-6">
          <h2 className="mb-3 font-medium">Revocation, mailbox by mailbox</h2>
          <Table columns={["Mailbox", "Result"]}>
            {revokeItems.map((item) => (
              <tr key={item.itemId}>
                <td>{item.label ?? item.itemId}</td>
                <td>
                  {item.state === "finished"
                    ? (REVOKE_RESULT_LABELS[item.result ?? ""] ?? item.result)
                    : item.attempts > 0
                      ? `Failed ${item.attempts} of ${MAX_ITEM_ATTEMPTS} attempts; trying again`
                      : item.state === "started"
                        ? "Under way"
                        : "Waiting"}
                  {item.result === "error" && item.detail && (
                    <span className="block text-slate-600 text-xs">{item.detail}</span>
                  )}
                </td>
              </tr>
            ))}
          </Table>
        </Card>
      )}

      <Card className="mb-6 space-y-2">
        <h2 className="font-medium">Pause one mailbox</h2>
        <p className="text-slate-700 text-sm">
          Each mailbox has a Pause button on the{" "}
          <Link className="underline" href="/mailboxes">
            Mailboxes
          </Link>{" "}
          page: nothing is sent from it until it is resumed; its tokens are kept.
        </p>
      </Card>

      {operator && (
        <Card className="mb-6 space-y-3">
          <h2 className="font-medium">Every organisation (operators)</h2>
          <p className="text-slate-700 text-sm">
            You are named in OPERATOR_EMAILS: these switches act on every organisation of this
            deployment, and every organisation sees the banner.
          </p>
          {SWITCHES.map((s) => {
            const on = globalSwitch(s.kind);
            return (
              <div key={s.kind} className="space-y-1">
                <p className="text-sm">
                  {s.on} for everyone: <strong>{on ? `on (${on.reason})` : "off"}</strong>
                </p>
                <IncidentSwitch
                  action={setGlobalSwitchAction}
                  label={`${on ? s.off : s.on} for every organisation`}
                  confirmLabel={on ? "Yes, for everyone" : "Yes, for everyone"}
                  explanation={on ? s.offText : s.onText}
                  fields={{ kind: s.kind, on: on ? "false" : "true" }}
                  askReason={!on}
                  variant={on ? "secondary" : "danger"}
                />
              </div>
            );
          })}
        </Card>
      )}

      <Card className="space-y-3">
        <h2 className="font-medium">Rotate the token encryption key</h2>
        <ol className="list-decimal space-y-1 pl-5 text-slate-700 text-sm">
          <li>
            Generate a key and put it <strong>first</strong> in TOKEN_ENCRYPTION_KEYS, keeping the
            old ones after it (<code>new:…,old:…</code>). The first key encrypts; every key listed
            decrypts.
          </li>
          <li>Restart every instance, so that all of them read the new list.</li>
          <li>
            Re-encrypt: every token is rewritten under the new key (below, or `npm run
            keys:rotate`).
          </li>
          <li>
            When no cell uses the old key any more, remove it from the list and restart again. If
            the old key leaked, revoke every mailbox too: whoever holds the key and a copy of the
            database can read the old tokens.
          </li>
        </ol>
        <p className="text-sm">
          Current key: <code>{keyring().current.id}</code>
        </p>
        {operator ? (
          <>
            <Table columns={["Key id", "Token cells"]}>
              {keyCounts.map((k) => (
                <tr key={k.keyId}>
                  <td>
                    <code>{k.keyId}</code>
                  </td>
                  <td>{k.cells}</td>
                </tr>
              ))}
            </Table>
            {reencryptView && <JobProgress job={reencryptView} label="Re-encryption" />}
            {!isActive(reencryptJob) && (
              <IncidentSwitch
                action={reencryptAction}
                label="Re-encrypt every token now"
                confirmLabel="Yes, re-encrypt"
                explanation="Every organisation's tokens are rewritten under the current key; sending goes on meanwhile."
                askReason={false}
                variant="primary"
              />
            )}
          </>
        ) : (
          <p className="text-slate-600 text-sm">
            The key serves the whole deployment, so the operators named in OPERATOR_EMAILS
            re-encrypt; ask them.
          </p>
        )}
      </Card>

      <p className="mt-6 text-sm">
        What to do next:{" "}
        <Link className="underline" href="/runbook">
          the runbook
        </Link>
        .
      </p>
    </>
  );
}
