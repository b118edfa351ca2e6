import { notFound } from "next/navigation";
import { PageHeader } from "@/components/page-header";
import { Card } from "@/components/ui/card";
import { EmptyState } from "@/components/ui/empty-state";
import { getDb } from "@/db";
import { filterOwnMessageIds } from "@/db/queries/messages";
import { hasPermission } from "@/lib/auth/roles";
import { requirePermission } from "@/lib/auth/session";
import { readDemoInbox } from "@/lib/demo";
import { env } from "@/lib/env";
import { formatDateTime } from "@/lib/utils";

export const metadata = { title: "Demo inbox" };

export default async function DemoInboxPage() {
  const ctx = await requirePermission("view", "/demo-inbox");
  const e = env();
  if (!e.isDemo) notFound();
  // The demo SMTP server keeps every organisation's mail in one folder: show only what this
  // organisation sent, matched by the Message-ID recorded when it was sent.
  const inbox = await readDemoInbox(e.dataDir, { limit: 500 });
  const own = await filterOwnMessageIds({
    db: await getDb(),
    orgId: ctx.orgId,
    messageIds: inbox.flatMap((m) => (m.messageId ? [m.messageId] : [])),
  });
  const messages = inbox.filter((m) => m.messageId && own.has(m.messageId)).slice(0, 100);
  return (
    <>
      <PageHeader
        title="Demo inbox"
        description="What this organisation sent through the demo SMTP server, newest first. Demo mode only."
      />
      {messages.length === 0 ? (
        <Card>
          <EmptyState title="Nothing has arrived yet">
            {hasPermission(ctx.role, "send")
              ? "Send a test message from a connected demo mailbox: it will show up here."
              : "Mail your organisation sends through the demo mailbox will show up here."}
          </EmptyState>
        </Card>
      ) : (
        <ul className="space-y-3">
          {messages.map((m) => (
            <li key={m.id}>
              <Card>
                <div className="flex justify-between text-slate-600 text-xs">
                  <span>
                    From {m.envelopeFrom} to {m.envelopeTo.join(", ")}
                  </span>
                  <time>{formatDateTime(m.receivedAt)}</time>
                </div>
                <h2 className="mt-1 font-medium">{m.subject || "(no subject)"}</h2>
                <pre className="mt-2 whitespace-pre-wrap font-sans text-sm">{m.text}</pre>
              </Card>
            </li>
          ))}
        </ul>
      )}
    </>
  );
}
