import "server-only";
import { eq, isNotNull, sql } from "drizzle-orm";
import type { DbOrTx } from "@/db";
import {
  DEFAULT_AUDIT_NETWORK_RETENTION_DAYS,
  DEFAULT_MESSAGE_PERSONAL_RETENTION_DAYS,
  organizationSettings,
  organizations,
} from "@/db/schema";

/** Days to keep each kind of data; null keeps it forever. */
export type RetentionSettings = {
  auditDays: number | null;
  messageDays: number | null;
  networkDays: number | null;
};

const DEFAULT_RETENTION: RetentionSettings = {
  auditDays: null,
  messageDays: DEFAULT_MESSAGE_PERSONAL_RETENTION_DAYS,
  networkDays: DEFAULT_AUDIT_NETWORK_RETENTION_DAYS,
};

/** The organisation's retention periods; one that never saved any has the defaults. */
export async function getRetentionSettings({
  db,
  orgId,
}: {
  db: DbOrTx;
  orgId: string;
}): Promise<RetentionSettings> {
  const [row] = await db
    .select({
      auditDays: organizationSettings.auditRetentionDays,
      messageDays: organizationSettings.messagePersonalRetentionDays,
      networkDays: organizationSettings.auditNetworkRetentionDays,
    })
    .from(organizationSettings)
    .where(eq(organizationSettings.orgId, orgId));
  return row ?? DEFAULT_RETENTION;
}

export async function setRetentionSettings({
  db,
  orgId,
  settings,
}: {
  db: DbOrTx;
  orgId: string;
  settings: RetentionSettings;
}) {
  const values = {
    auditRetentionDays: settings.auditDays,
    messagePersonalRetentionDays: settings.messageDays,
    auditNetworkRetentionDays: settings.networkDays,
    updatedAt: new Date(),
  };
  await db
    .insert(organizationSettings)
    .values({ orgId, ...values })
    .onConflictDoUpdate({ target: organizationSettings.orgId, set: values });
}

/**
 * Every organisation that keeps messages' recipients or events' network fields for a limited
 * time, with its periods (the defaults where it never saved settings).
 */
export async function listPersonalRetentionSettings({ db }: { db: DbOrTx }) {
  const rows = await db
    .select({
      orgId: organizations.id,
      messageDays: sql<number | null>`case when ${organizationSettings.orgId} is null
        then ${DEFAULT_MESSAGE_PERSONAL_RETENTION_DAYS}::int
        else ${organizationSettings.messagePersonalRetentionDays} end`,
      networkDays: sql<number | null>`case when ${organizationSettings.orgId} is null
        then ${DEFAULT_AUDIT_NETWORK_RETENTION_DAYS}::int
        else ${organizationSettings.auditNetworkRetentionDays} end`,
    })
    .from(organizations)
    .leftJoin(organizationSettings, eq(organizationSettings.orgId, organizations.id))
    .orderBy(organizations.id);
  return rows.filter((r) => r.messageDays !== null || r.networkDays !== null);
}

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
