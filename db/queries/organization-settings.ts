import "server-only";
import { eq, isNotNull } from "drizzle-orm";
import type { DbOrTx } from "@/db";
import { organizationSettings } from "@/db/schema";

export async function getAuditRetentionDays({ db, orgId }: { db: DbOrTx; orgId: string }) {
  const [row] = await db
    .select({ days: organizationSettings.auditRetentionDays })
    .from(organizationSettings)
    .where(eq(organizationSettings.orgId, orgId));
  return row?.days ?? null;
}

export async function setAuditRetentionDays({
  db,
  orgId,
  days,
}: {
  db: DbOrTx;
  orgId: string;
  days: number | null;
}) {
  await db
    .insert(organizationSettings)
    .values({ orgId, auditRetentionDays: days, updatedAt: new Date() })
    .onConflictDoUpdate({
      target: organizationSettings.orgId,
      set: { auditRetentionDays: days, updatedAt: new Date() },
    });
}

export async function listAuditRetentionSettings({ db }: { db: DbOrTx }) {
  return db
    .select({ orgId: organizationSettings.orgId, days: organizationSettings.auditRetentionDays })
    .from(organizationSettings)
    .where(isNotNull(organizationSettings.auditRetentionDays));
}
