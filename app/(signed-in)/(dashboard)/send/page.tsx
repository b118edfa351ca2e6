import Link from "next/link";
import { PageHeader } from "@/components/page-header";
import { Card } from "@/components/ui/card";
import { getDb } from "@/db";
import { listMailboxes } from "@/db/queries/mailboxes";
import { requirePermission } from "@/lib/auth/session";
import { SendTestForm } from "./form";

export const metadata = { title: "Send a test message" };

export default async function SendPage() {
  const ctx = await requirePermission("send", "/send");
  const mailboxes = (await listMailboxes({ db: await getDb(), orgId: ctx.orgId })).filter(
    (m) => m.status === "connected",
  );
  return (
    <>
      <PageHeader
        title="Send a test message"
        description="Goes through the same checks as the API: incident switches, rate limits, validation, the mailbox's health."
      />
      <Card className="max-w-2xl">
        {mailboxes.length === 0 ? (
          <p className="text-sm">
            No connected mailbox yet.{" "}
            <Link href="/mailboxes" className="text-brand-600 underline">
              See the mailboxes
            </Link>
            .
          </p>
        ) : (
          <SendTestForm mailboxes={mailboxes.map((m) => ({ id: m.id, address: m.address }))} />
        )}
      </Card>
    </>
  );
}
