import Link from "next/link";
import { PageHeader } from "@/components/page-header";
import { SendsChart } from "@/components/sends-chart";
import { Badge } from "@/components/ui/badge";
import { Card } from "@/components/ui/card";
import { Table } from "@/components/ui/table";
import { getDb } from "@/db";
import { countMessagesPerDay, listRecentMessages } from "@/db/queries/messages";
import { requirePermission } from "@/lib/auth/session";
import { formatDateTime } from "@/lib/utils";

export const metadata = { title: "Messages" };

const TONE = { sent: "good", failed: "bad", sending: "warn" } as const;

export default async function MessagesPage() {
  const ctx = await requirePermission("view", "/messages");
  const db = await getDb();
  const [messages, days] = await Promise.all([
    listRecentMessages({ db, orgId: ctx.orgId, limit: 100 }),
    countMessagesPerDay({ db, orgId: ctx.orgId, days: 14 }),
  ]);
  return (
    <>
      <PageHeader
        title="Messages"
        description="Recent sends of this organisation. Message bodies are never kept."
      />
      <Card className="mb-6">
        <h2 className="mb-3 font-medium">Sends per day</h2>
        <SendsChart days={days} />
      </Card>
      <Card>
        {messages.length === 0 ? (
          <p className="text-sm">
            Nothing sent yet.{" "}
            <Link className="text-brand-600 underline" href="/send">
              Send a test message
            </Link>{" "}
            or create an API key for your services.
          </p>
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
                </td>
                <td className="max-w-xs py-2 font-mono text-xs break-words">
                  {m.smtpResponse ?? m.errorCode ?? "—"}
                </td>
              </tr>
            ))}
          </Table>
        )}
      </Card>
    </>
  );
}
