import Link from "next/link";
import { PageHeader } from "@/components/page-header";
import { buttonClass } from "@/components/ui/button";
import { Card } from "@/components/ui/card";
import { EmptyState } from "@/components/ui/empty-state";
import { getDb } from "@/db";
import { listMailboxes } from "@/db/queries/mailboxes";
import { hasPermission } from "@/lib/auth/roles";
import { requirePermission } from "@/lib/auth/session";
import { SendTestForm } from "./form";

export const metadata = { title: "Send a test message" };

export default async function SendPage() {
  const ctx = await requirePermission("send", "/send");
  const mailboxes = (await listMailboxes({ db: await getDb(), orgId: ctx.orgId })).filter(
    (m) => m.status === "connected",
  );
  const canManage = hasPermission(ctx.role, "manageMailboxes");
  return (
    <>
      <PageHeader
        title="Send a test message"
        description="Goes through the same checks as the API: incident switches, rate limits, validation, the mailbox's health."
      />
      <Card className="max-w-2xl">
        {mailboxes.length === 0 ? (
          <EmptyState
            title="No connected mailbox yet"
            action={
              canManage && (
                <Link href="/mailboxes" className={buttonClass("primary")}>
                  Connect a mailbox
                </Link>
              )
            }
          >
            {canManage
              ? "Connect one first: test messages are sent from a connected mailbox."
              : "An owner or admin of your organisation connects mailboxes. Ask them to connect one."}
          </EmptyState>
        ) : (
          <SendTestForm mailboxes={mailboxes.map((m) => ({ id: m.id, address: m.address }))} />
        )}
      </Card>
    </>
  );
}
