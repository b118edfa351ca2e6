import { PageHeader } from "@/components/page-header";
import { Card } from "@/components/ui/card";
import { getDb } from "@/db";
import { getAuditRetentionDays } from "@/db/queries/organization-settings";
import { requirePermission } from "@/lib/auth/session";
import { RetentionForm } from "./form";

export const metadata = { title: "Activity retention" };

export default async function RetentionPage() {
  const ctx = await requirePermission("manageSettings", "/activity/retention");
  const days = await getAuditRetentionDays({ db: await getDb(), orgId: ctx.orgId });
  return (
    <>
      <PageHeader
        title="Activity retention"
        description="Events older than this are purged once a day. What remains stays verifiable: the purge records where it cut the chain, and is itself an event in the log."
      />
      <Card>
        <RetentionForm days={days} />
      </Card>
    </>
  );
}
