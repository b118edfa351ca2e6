import { PageHeader } from "@/components/page-header";
import { Card } from "@/components/ui/card";
import { getDb } from "@/db";
import { listMailboxes } from "@/db/queries/mailboxes";
import { getNotificationMailbox } from "@/db/queries/notifications";
import { requirePermission } from "@/lib/auth/session";
import { env } from "@/lib/env";
import { NotificationSenderForm } from "./form";

export const metadata = { title: "Notifications" };

export default async function NotificationsPage() {
  const ctx = await requirePermission("manageSettings", "/notifications");
  const db = await getDb();
  const [sender, mailboxes] = await Promise.all([
    getNotificationMailbox({ db, orgId: ctx.orgId }),
    listMailboxes({ db, orgId: ctx.orgId }),
  ]);
  const connected = mailboxes.filter((m) => m.status === "connected" || m.id === sender?.id);
  const digestMinutes = Math.max(1, Math.round(env().NOTIFICATION_DIGEST_SECONDS / 60));
  return (
    <>
      <PageHeader
        title="Notifications"
        description="Owners and admins are told by email when a mailbox needs reconnecting or an administrator, or works again; when an incident switch changes; when an API key is created or revoked; when a member joins or their role changes; when Mailwarden turns a webhook endpoint off. The person who connected a broken mailbox is told too."
      />
      <Card className="max-w-2xl space-y-4">
        {sender ? (
          <p className="text-sm">
            Notification emails are sent from <strong>{sender.address}</strong>, through the same
            checks as every message: while sending is paused they are not sent, and each one is in
            the activity log. Events within {digestMinutes} minutes of each other arrive as one
            email.
          </p>
        ) : (
          <p className="rounded-md border border-amber-300 bg-amber-50 p-3 text-amber-900 text-sm">
            No notification mailbox is chosen: only dashboard notices are shown. Choose a connected
            mailbox to send notification emails from.
          </p>
        )}
        {sender && sender.status !== "connected" && (
          <p className="text-red-700 text-sm">
            {sender.address} cannot send now, so notification emails are not going out. Reconnect it
            or choose another mailbox.
          </p>
        )}
        <NotificationSenderForm
          current={sender?.id ?? null}
          mailboxes={connected.map((m) => ({ id: m.id, address: m.address }))}
        />
      </Card>
    </>
  );
}
