import { PageHeader } from "@/components/page-header";
import { Card } from "@/components/ui/card";
import { getDb } from "@/db";
import { getRetentionSettings } from "@/db/queries/organization-settings";
import { requirePermission } from "@/lib/auth/session";
import { RetentionForm } from "./form";

export const metadata = { title: "Data retention" };

export default async function RetentionPage() {
  const ctx = await requirePermission("manageSettings", "/activity/retention");
  const settings = await getRetentionSettings({ db: await getDb(), orgId: ctx.orgId });
  return (
    <>
      <PageHeader
        title="Data retention"
        description="Applied once a day. Purged activity leaves the rest verifiable: the purge records where it cut the chain. Removing personal fields keeps every event verifiable too. Each run that changes something is an event in the log."
      />
      <Card>
        <RetentionForm settings={settings} />
      </Card>
    </>
  );
}
