import Link from "next/link";
import { notFound } from "next/navigation";
import { PageHeader } from "@/components/page-header";
import { Badge } from "@/components/ui/badge";
import { Card } from "@/components/ui/card";
import { getDb } from "@/db";
import { getDataRequest } from "@/db/queries/privacy";
import { requirePermission } from "@/lib/auth/session";
import { erasureRefusal } from "@/lib/privacy/erasure-refusals";
import { describeSubject, isOverdue } from "@/lib/privacy/requests";
import { formatDateTime } from "@/lib/utils";
import { EraseForm } from "../forms";

export const metadata = { title: "Data request" };

function plural(n: number, one: string, many = `${one}s`) {
  return `${n} ${n === 1 ? one : many}`;
}

export default async function DataRequestPage({
  params,
}: {
  params: Promise<{ requestId: string }>;
}) {
  const ctx = await requirePermission("handlePrivacy", "/privacy/[requestId]");
  const { requestId } = await params;
  const db = await getDb();
  const request = await getDataRequest({ db, orgId: ctx.orgId, requestId });
  if (!request) notFound();
  const open = request.status === "open";
  const summary = open ? await describeSubject(db, ctx.orgId, request.subjectEmail) : null;
  const receipt = request.receipt as { chainVerification?: { intact: boolean } } | null;
  return (
    <>
      <PageHeader
        title={`${request.kind === "export" ? "Export" : "Erasure"} request`}
        description={`About ${request.subjectEmail}. Received ${formatDateTime(request.receivedAt)}, due ${formatDateTime(request.dueAt)}.`}
      >
        <Link className="text-brand-600 text-sm underline" href="/privacy">
          All requests
        </Link>
      </PageHeader>
      <p className="mb-4">
        {isOverdue(request) ? (
          <Badge tone="bad">Overdue</Badge>
        ) : open ? (
          <Badge tone="warn">Open</Badge>
        ) : (
          <Badge tone="good">Completed {formatDateTime(request.completedAt)}</Badge>
        )}
      </p>
      {summary && (
        <Card className="mb-6">
          <h2 className="mb-2 font-medium">What this organisation holds about them</h2>
          <ul className="list-disc space-y-1 pl-5 text-sm">
            <li>
              {summary.role
                ? `A member (${summary.role}) with an account.`
                : "Not a member of this organisation: below is what it holds about the address."}
            </li>
            <li>
              {plural(summary.mailboxes, "mailbox", "mailboxes")} they connected or with their
              address
            </li>
            <li>{plural(summary.apiKeys, "API key")} they created</li>
            <li>{plural(summary.messagesSent, "message")} they sent</li>
            <li>{plural(summary.messagesAddressed, "message")} addressed to them</li>
            <li>{plural(summary.auditEvents, "activity log event")} naming them</li>
            <li>{plural(summary.invitations, "invitation")} to their address</li>
            <li>
              {plural(summary.notices, "notice")} and{" "}
              {plural(summary.notificationEmails, "notification email")} for them or naming them
            </li>
            <li>
              {plural(summary.webhookDeliveries, "webhook delivery", "webhook deliveries")} naming
              their address
            </li>
          </ul>
        </Card>
      )}
      {open && request.kind === "export" && (
        <Card>
          <h2 className="mb-2 font-medium">Export</h2>
          <p className="mb-3 text-sm">
            One JSON document with all of the above (never tokens, key hashes or session tokens),
            each part explained. Downloading it completes the request and is recorded in the
            activity log.
          </p>
          <a
            className="inline-block rounded-md bg-brand-600 px-4 py-2 font-medium text-sm text-white"
            href={`/privacy/${request.id}/export`}
            download
          >
            Download export
          </a>
        </Card>
      )}
      {open && request.kind === "erasure" && summary && (
        <Card>
          <h2 className="mb-2 font-medium">Erase</h2>
          {erasureRefusal(summary, ctx.role) ? (
            <p role="alert" className="text-red-700 text-sm">
              {erasureRefusal(summary, ctx.role)?.message}
            </p>
          ) : (
            <>
              <p className="mb-2 text-sm">Erasing will, and cannot be undone:</p>
              <ul className="mb-4 list-disc space-y-1 pl-5 text-sm">
                <li>
                  revoke {plural(summary.mailboxes, "mailbox", "mailboxes")} at the provider,
                  destroy the tokens and delete the mailboxes;
                </li>
                <li>
                  {`delete ${plural(summary.apiKeys, "API key")}, ${plural(summary.invitations, "invitation")}, ${plural(summary.notices, "notice")} and ${plural(summary.notificationEmails, "notification email")};`}
                </li>
                {summary.role && <li>remove their membership of this organisation;</li>}
                {summary.account?.accountDeleted ? (
                  <li>
                    delete their account with {plural(summary.account.sessions, "session")} and{" "}
                    {plural(summary.account.accounts, "sign-in link")} (this is their last
                    organisation);
                  </li>
                ) : summary.role ? (
                  <li>keep their account: they belong to another organisation;</li>
                ) : null}
                <li>
                  remove their address from {plural(summary.messagesAddressed, "kept message")}; the{" "}
                  {plural(summary.messagesSent, "message")} they sent stay as the
                  organisation&apos;s record, without their name;
                </li>
                {(summary.queuedMessages > 0 || summary.webhookDeliveries > 0) && (
                  <li>
                    {`cancel ${plural(summary.queuedMessages, "queued message")} addressed to them or waiting to go out from their mailboxes or with their keys, and delete ${plural(summary.webhookDeliveries, "webhook delivery", "webhook deliveries")} that name their address;`}
                  </li>
                )}
                <li>
                  replace them with a pseudonym in{" "}
                  {plural(summary.auditEvents, "activity log event")} (IP address and browser
                  removed); the log still verifies.
                </li>
              </ul>
              <EraseForm requestId={request.id} />
            </>
          )}
        </Card>
      )}
      {!open && request.kind === "erasure" && receipt && (
        <Card>
          <h2 className="mb-2 font-medium">Receipt</h2>
          <p className="mb-3 text-sm">
            Erased {formatDateTime(request.completedAt)}. Activity log after erasure:{" "}
            {receipt.chainVerification?.intact ? "verified intact" : "NOT verified intact"}.
          </p>
          <a
            className="text-brand-600 text-sm underline"
            href={`/privacy/${request.id}/receipt`}
            download
          >
            Download receipt
          </a>
        </Card>
      )}
      {!open && request.kind === "export" && (
        <Card>
          <p className="text-sm">The export was delivered {formatDateTime(request.completedAt)}.</p>
        </Card>
      )}
    </>
  );
}
