import Link from "next/link";
import { PageHeader } from "@/components/page-header";
import { Pager } from "@/components/pager";
import { Badge } from "@/components/ui/badge";
import { Card } from "@/components/ui/card";
import { Table } from "@/components/ui/table";
import { getDb } from "@/db";
import { countOverdueDataRequests, listDataRequests } from "@/db/queries/privacy";
import { requirePermission } from "@/lib/auth/session";
import { parsePageParams } from "@/lib/paging";
import { isOverdue } from "@/lib/privacy/requests";
import { formatDateTime } from "@/lib/utils";
import { RecordRequestForm } from "./forms";

export const metadata = { title: "Data requests" };

const KIND_LABELS = { export: "Export", erasure: "Erasure" } as const;

export default async function PrivacyPage({
  searchParams,
}: {
  searchParams: Promise<Record<string, string | string[] | undefined>>;
}) {
  const ctx = await requirePermission("handlePrivacy", "/privacy");
  const position = parsePageParams(await searchParams);
  const db = await getDb();
  // The overdue count is the organisation's, not the page's.
  const [page, overdue] = await Promise.all([
    listDataRequests({ db, orgId: ctx.orgId, page: position.request }),
    countOverdueDataRequests({ db, orgId: ctx.orgId }),
  ]);
  const requests = page.rows;
  const now = new Date();
  return (
    <>
      <PageHeader
        title="Data requests"
        description="Access, portability and erasure requests from the people whose data this organisation holds: members, and anyone its mail was addressed to. Each is due one month after it arrived."
      />
      {overdue > 0 && (
        <p
          role="alert"
          className="mb-4 rounded-md border border-red-300 bg-red-50 p-3 text-red-800 text-sm"
        >
          {overdue} {overdue === 1 ? "request is" : "requests are"} overdue.
        </p>
      )}
      <Card className="mb-6">
        <h2 className="mb-3 font-medium">Record a request</h2>
        <RecordRequestForm today={now.toISOString().slice(0, 10)} />
      </Card>
      <Card>
        <h2 className="mb-3 font-medium">Requests</h2>
        <Table columns={["Request", "About", "Asked by", "Received", "Due", "Status", ""]}>
          {requests.map((r) => (
            <tr key={r.id}>
              <td>{KIND_LABELS[r.kind]}</td>
              <td>{r.subjectEmail}</td>
              <td>{r.requestedBy ?? "—"}</td>
              <td>{formatDateTime(r.receivedAt)}</td>
              <td>{formatDateTime(r.dueAt)}</td>
              <td>
                {isOverdue(r, now) ? (
                  <Badge tone="bad">Overdue</Badge>
                ) : r.status === "completed" ? (
                  <Badge tone="good">Completed {formatDateTime(r.completedAt)}</Badge>
                ) : (
                  <Badge tone="warn">Open</Badge>
                )}
              </td>
              <td>
                <Link className="text-brand-600 underline" href={`/privacy/${r.id}`}>
                  {r.status === "open" ? "Handle" : "Details"}
                  <span className="sr-only"> {`${KIND_LABELS[r.kind]} ${r.subjectEmail}`}</span>
                </Link>
                {r.hasReceipt && r.kind === "erasure" && (
                  <>
                    {" · "}
                    <a className="text-brand-600 underline" href={`/privacy/${r.id}/receipt`}>
                      Receipt
                    </a>
                  </>
                )}
              </td>
            </tr>
          ))}
        </Table>
        {requests.length === 0 && <p className="text-slate-500 text-sm">No requests yet.</p>}
        <Pager path="/privacy" page={page} error={position.error} label="Pages of requests" />
      </Card>
    </>
  );
}
