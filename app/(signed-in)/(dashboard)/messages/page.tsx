import Link from "next/link";
import { PageHeader } from "@/components/page-header";
import { SendsChart } from "@/components/sends-chart";
import { Badge } from "@/components/ui/badge";
import { buttonClass } from "@/components/ui/button";
import { Card } from "@/components/ui/card";
import { EmptyState } from "@/components/ui/empty-state";
import { Table } from "@/components/ui/table";
import { getDb } from "@/db";
import { countMessagesPerDay, listRecentMessages } from "@/db/queries/messages";
import { hasPermission } from "@/lib/auth/roles";
import { requirePermission } from "@/lib/auth/session";
import { formatDateTime } from "@/lib/utils";
import { CancelMessageButton } from "./forms";

export const metadata = { title: "Messages" };

const TONE = {
  sent: "good",
  failed: "bad",
  sending: "warn",
  queued: "warn",
  retrying: "warn",
  cancelled: "neutral",
} as const;

export default async function MessagesPage() {
  const ctx = await requirePermission("view", "/messages");
  const canSend = hasPermission(ctx.role, "send");
  const canManageKeys = hasPermission(ctx.role, "manageApiKeys");
  const db = await getDb();
  const [messages, days] = await Promise.all([
    listRecentMessages({ db, orgId: ctx.orgId, limit: 100 }),
    countMessagesPerDay({ db, orgId: ctx.orgId, days: 14 }),
  ]);
  return (
    <>
      <PageHeader
        title="Messages"
        description="Recent sends of this organisation. Message bodies are never kept, except sealed while a queued message waits."
      />
      <Card className="mb-6">
        <h2 className="mb-3 font-medium">Sends per day</h2>
        <SendsChart days={days} />
      </Card>
      <Card>
        {messages.length === 0 ? (
          <EmptyState
            title="Nothing sent yet"
            action={
              <>
                {canSend && (
                  <Link className={buttonClass("primary")} href="/send">
                    Send a first message
                  </Link>
                )}
                {canManageKeys && (
                  <Link className={buttonClass("secondary")} href="/api-keys">
                    Create an API key
                  </Link>
                )}
              </>
            }
          >
            {canSend || canManageKeys
              ? "Messages appear here once they are sent from the dashboard or by a service with an API key."
              : "Messages appear here once someone of your organisation sends one."}
          </EmptyState>
        ) : (
          <Table
            columns={[
              "When",
              "Mailbox",
              "Sender",
              "Subject",
              "Recipients",
              "Status",
              "Server reply",
              "",
            ]}
          >
            {messages.map((m) => (
              <tr key={m.id}>
                <td className="whitespace-nowrap">{formatDateTime(m.createdAt)}</td>
                <td>{m.mailboxAddress ?? "removed mailbox"}</td>
                <td>
                  {m.senderLabel ?? "—"}{" "}
                  <span className="text-slate-500 text-xs">
                    ({m.senderType === "api_key" ? "API key" : "dashboard"})
                  </span>
                </td>
                <td>{m.subject || "(no subject)"}</td>
                <td>{m.recipientCount}</td>
                <td>
                  <Badge tone={TONE[m.status]}>{m.status}</Badge>
                  {m.status === "retrying" && m.nextAttemptAt && (
                    <span className="block text-slate-500 text-xs">
                      next try {formatDateTime(m.nextAttemptAt)}
                    </span>
                  )}
                </td>
                <td className="max-w-xs py-2 font-mono text-xs break-words">
                  {m.smtpResponse ?? m.lastError ?? m.errorCode ?? "—"}
                </td>
                <td>
                  {canSend && (m.status === "queued" || m.status === "retrying") && (
                    <CancelMessageButton messageId={m.id} subject={m.subject || "(no subject)"} />
                  )}
                </td>
              </tr>
            ))}
          </Table>
        )}
      </Card>
    </>
  );
}
