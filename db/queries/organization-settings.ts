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

export type ClientCredentialFacts = {
  googlePublishingStatus: "testing" | "production" | null;
  /** YYYY-MM-DD */
  googleSecretExpiresOn: string | null;
  microsoftSecretExpiresOn: string | null;
};

export async function getClientCredentialFacts({
  db,
  orgId,
}: {
  db: DbOrTx;
  orgId: string;
}): Promise<ClientCredentialFacts> {
  const [row] = await db
    .select({
      googlePublishingStatus: organizationSettings.googlePublishingStatus,
      googleSecretExpiresOn: organizationSettings.googleSecretExpiresOn,
      microsoftSecretExpiresOn: organizationSettings.microsoftSecretExpiresOn,
    })
    .from(organizationSettings)
    .where(eq(organizationSettings.orgId, orgId));
  return {
    googlePublishingStatus: row?.googlePublishingStatus ?? null,
    googleSecretExpiresOn: row?.googleSecretExpiresOn ?? null,
    microsoftSecretExpiresOn: row?.microsoftSecretExpiresOn ?? null,
  };
}

export async function setClientCredentialFacts({
  db,
  orgId,
  facts,
}: {
  db: DbOrTx;
  orgId: string;
  facts: ClientCredentialFacts;
}) {
  await db
    .insert(organizationSettings)
    .values({ orgId, ...facts, updatedAt: new Date() })
    .onConflictDoUpdate({
      target: organizationSettings.orgId,
      set: { ...facts, updatedAt: new Date() },
    });
}
