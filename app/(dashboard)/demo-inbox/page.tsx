import { notFound } from "next/navigation";
import { PageHeader } from "@/components/page-header";
import { Card } from "@/components/ui/card";
import { getDb } from "@/db";
import { requirePermission } from "@/lib/auth/session";
import { readDemoInboxForOrg } from "@/lib/demo/org-inbox";
import { env } from "@/lib/env";
import { formatDateTime } from "@/lib/utils";

export const metadata = { title: "Demo inbox" };

export default async function DemoInboxPage() {
  const ctx = await requirePermission("view", "/demo-inbox");
  const e = env();
  if (!e.isDemo) notFound();
  const messages = await readDemoInboxForOrg({
    db: await getDb(),
    orgId: ctx.orgId,
    dataDir: e.dataDir,
    limit: 100,
  });
  return (
    <>
      <PageHeader
        title="Demo inbox"
        description="What your organisation's demo mailboxes sent, newest first. Demo mode only."
      />
      {messages.length === 0 ? (
        <Card>
          <p className="text-sm">
            Nothing has arrived yet. Connect a demo mailbox and send a test message: it will show up
            here.
          </p>
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
