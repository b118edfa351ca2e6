import Link from "next/link";
import { forbidden } from "next/navigation";
import { PageHeader } from "@/components/page-header";
import { Badge } from "@/components/ui/badge";
import { Card } from "@/components/ui/card";
import { EmptyState } from "@/components/ui/empty-state";
import { Table } from "@/components/ui/table";
import { getDb } from "@/db";
import { listActivityChoices } from "@/db/queries/activity";
import { loadActivityPage } from "@/lib/audit/activity";
import { formatCursor, parseActivityQuery } from "@/lib/audit/activity-filter";
import { AUDIT_ACTION_LABELS, AUDIT_ACTIONS } from "@/lib/audit/events";
import { checkOrganizationChain } from "@/lib/audit/read";
import { isOperator } from "@/lib/auth/operators";
import { activityView, requirePermission } from "@/lib/auth/session";
import { formatDateTime } from "@/lib/utils";

export const metadata = { title: "Activity log" };

const OUTCOME_TONE = { success: "good", failure: "bad", denied: "warn" } as const;

// The sealer runs within seconds of a write; an event still unsealed after this is an incident.
const UNSEALED_ALARM_MS = 60_000;

const CONTROL = "mt-1 block w-full rounded-md border border-slate-300 px-2 py-1.5 text-sm";

function href(path: string, params: Record<string, string>): string {
  const search = new URLSearchParams(params).toString();
  return search ? `${path}?${search}` : path;
}

export default async function ActivityPage({
  searchParams,
}: {
  searchParams: Promise<Record<string, string | string[] | undefined>>;
}) {
  const ctx = await requirePermission("readAudit", "/activity");
  const parsed = parseActivityQuery(await searchParams);
  if (!parsed.ok) {
    return (
      <>
        <PageHeader title="Activity log" />
        <Card className="border-red-300 bg-red-50" role="alert">
          <p className="font-medium text-red-800 text-sm">This filter cannot be used:</p>
          <ul className="mt-1 list-disc pl-5 text-red-800 text-sm">
            {parsed.errors.map((e) => (
              <li key={`${e.field}:${e.message}`}>
                {e.field}: {e.message}
              </li>
            ))}
          </ul>
          <p className="mt-2 text-sm">
            <Link href="/activity" className="underline">
              Show all activity
            </Link>
          </p>
        </Card>
      </>
    );
  }
  const query = parsed.query;
  const view = await activityView(ctx, query.view, "/activity");
  // The system events are the operators' (app/forbidden.tsx says so).
  if (view === "refused") forbidden();
  const isSystem = view === "system";
  // Whether to offer the other view.
  const operator = isSystem || (await isOperator({ db: await getDb(), userId: ctx.user.id }));
  const chain = isSystem ? "" : ctx.orgId;
  const db = await getDb();
  const [page, report, choices] = await Promise.all([
    loadActivityPage({ db, chain, query }),
    checkOrganizationChain(db, chain),
    listActivityChoices({ db, orgId: ctx.orgId }),
  ]);
  const oldestUnsealed = report.unsealed.oldest;
  const isSealerStuck =
    oldestUnsealed !== null && Date.now() - oldestUnsealed.getTime() > UNSEALED_ALARM_MS;
  const { view: _view, ...filterOnly } = query.params;
  const filterParams: Record<string, string> = isSystem
    ? { ...filterOnly, view: "system" }
    : filterOnly;
  const f = query.params;
  return (
    <>
      <PageHeader
        title={isSystem ? "System events" : "Activity log"}
        description={
          isSystem
            ? "Events that belong to no organisation: key rotation, global switches, unknown API keys."
            : "Every sign-in, OAuth, SMTP and admin event of this organisation. Append-only and hash-chained."
        }
      >
        {report.problem === null ? (
          <Badge tone="good">Chain intact · {report.length} events</Badge>
        ) : (
          <Badge tone="bad">
            Chain broken at event {report.problem.seq}: {report.problem.reason}
          </Badge>
        )}
      </PageHeader>
      {isSealerStuck && (
        <Card className="mb-4 border-red-300 bg-red-50" role="alert">
          <p className="text-red-800 text-sm">
            {report.unsealed.count} event{report.unsealed.count === 1 ? " has" : "s have"} not been
            sealed into the chain for more than a minute (oldest {formatDateTime(oldestUnsealed)}).
            The sealer is not running or is refusing this chain: check the server log.
          </p>
        </Card>
      )}
      <Card className="mb-4">
        <form
          method="get"
          action="/activity"
          className="grid grid-cols-2 gap-3 md:grid-cols-4 [&>*]:min-w-0"
        >
          {isSystem && <input type="hidden" name="view" value="system" />}
          <div className="text-sm">
            <label htmlFor="filter-action">Action</label>
            <select
              id="filter-action"
              name="action"
              defaultValue={f.action ?? ""}
              className={CONTROL}
            >
              <option value="">Any action</option>
              {AUDIT_ACTIONS.map((a) => (
                <option key={a} value={a}>
                  {AUDIT_ACTION_LABELS[a]}
                </option>
              ))}
            </select>
          </div>
          <div className="text-sm">
            <label htmlFor="filter-outcome">Outcome</label>
            <select
              id="filter-outcome"
              name="outcome"
              defaultValue={f.outcome ?? ""}
              className={CONTROL}
            >
              <option value="">Any outcome</option>
              <option value="success">Success</option>
              <option value="failure">Failure</option>
              <option value="denied">Denied</option>
            </select>
          </div>
          <div className="text-sm">
            <label htmlFor="filter-actor">Who</label>
            <select id="filter-actor" name="actor" defaultValue={f.actor ?? ""} className={CONTROL}>
              <option value="">Anyone</option>
              {choices.people.map((p) => (
                <option key={p.id} value={p.id}>
                  {p.label ?? p.id}
                </option>
              ))}
              {choices.keys.map((k) => (
                <option key={k.id} value={k.id}>
                  API key {k.label}
                </option>
              ))}
            </select>
          </div>
          <div className="text-sm">
            <label htmlFor="filter-target">Target</label>
            <select
              id="filter-target"
              name="target"
              defaultValue={f.target ?? ""}
              className={CONTROL}
            >
              <option value="">Anything</option>
              {choices.boxes.map((b) => (
                <option key={b.id} value={`mailbox:${b.id}`}>
                  Mailbox {b.label}
                </option>
              ))}
              {choices.people.map((p) => (
                <option key={p.id} value={`user:${p.id}`}>
                  Member {p.label ?? p.id}
                </option>
              ))}
              {choices.keys.map((k) => (
                <option key={k.id} value={`api_key:${k.id}`}>
                  API key {k.label}
                </option>
              ))}
            </select>
          </div>
          <div className="text-sm">
            <label htmlFor="filter-from">From</label>
            <input
              type="date"
              id="filter-from"
              name="from"
              defaultValue={f.from ?? ""}
              className={CONTROL}
            />
          </div>
          <div className="text-sm">
            <label htmlFor="filter-to">To</label>
            <input
              type="date"
              id="filter-to"
              name="to"
              defaultValue={f.to ?? ""}
              className={CONTROL}
            />
          </div>
          <div className="text-sm">
            <label htmlFor="filter-q">Text</label>
            <input
              type="search"
              id="filter-q"
              name="q"
              defaultValue={f.q ?? ""}
              maxLength={100}
              className={CONTROL}
            />
          </div>
          <div className="flex items-end gap-2">
            <button
              type="submit"
              className="rounded-md bg-slate-900 px-3 py-1.5 text-sm text-white"
            >
              Filter
            </button>
            <Link
              href={isSystem ? "/activity?view=system" : "/activity"}
              className="text-sm underline"
            >
              Clear
            </Link>
          </div>
        </form>
        <div className="mt-3 flex flex-wrap gap-4 text-sm">
          <a
            href={href("/activity/export", { ...filterParams, format: "csv" })}
            className="underline"
          >
            Download CSV
          </a>
          <a
            href={href("/activity/export", { ...filterParams, format: "jsonl" })}
            className="underline"
          >
            Download JSON Lines
          </a>
          {!isSystem && (
            <Link href="/activity/retention" className="underline">
              Data retention
            </Link>
          )}
          {operator &&
            (isSystem ? (
              <Link href="/activity" className="underline">
                This organisation's events
              </Link>
            ) : (
              <Link href="/activity?view=system" className="underline">
                System events
              </Link>
            ))}
        </div>
        {query.filter.text && (
          <p className="mt-2 text-slate-500 text-xs">
            Text search looks through 50,000 events per page at most; “Older” continues the search.
          </p>
        )}
      </Card>
      <Card>
        {page.entries.length === 0 ? (
          <EmptyState title="No events here">
            Nothing matches this filter. Sign-ins, mailbox connections and changes to members appear
            here as they happen.
          </EmptyState>
        ) : (
          <Table columns={["When", "Who", "Action", "Target", "Outcome", ""]}>
            {page.entries.map((e) => (
              <tr key={e.id}>
                <td className="whitespace-nowrap">{formatDateTime(e.occurredAt)}</td>
                <td>{e.who}</td>
                <td>{e.actionLabel}</td>
                <td className="text-xs">{e.target ?? "—"}</td>
                <td>
                  <Badge tone={OUTCOME_TONE[e.outcome]}>{e.outcome}</Badge>{" "}
                  {e.seq === null && <Badge>not sealed yet</Badge>}
                </td>
                <td>
                  <Link
                    href={href(`/activity/${e.id}`, isSystem ? { view: "system" } : {})}
                    className="text-sm underline"
                    aria-label={`Details of event ${e.id}`}
                  >
                    Details
                  </Link>
                </td>
              </tr>
            ))}
          </Table>
        )}
        <nav aria-label="Pages" className="mt-4 flex justify-between text-sm">
          {page.newer ? (
            <Link
              href={href("/activity", { ...filterParams, before: formatCursor(page.newer) })}
              className="underline"
            >
              ← Newer
            </Link>
          ) : (
            <span />
          )}
          {page.older && (
            <Link
              href={href("/activity", { ...filterParams, after: formatCursor(page.older) })}
              className="underline"
            >
              Older →
            </Link>
          )}
        </nav>
      </Card>
    </>
  );
}
