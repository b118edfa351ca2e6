import "server-only";
import { z } from "zod";
import { getDb, inTransaction } from "@/db";
import {
  type ClientCredentialFacts,
  getClientCredentialFacts,
  setClientCredentialFacts,
} from "@/db/queries/organization-settings";
import { writeAuditEvent } from "@/lib/audit/write";
import type { MemberContext } from "@/lib/auth/context";

// Facts about the OAuth clients that no API tells us (the Google app's publishing status, when
// each client secret expires): an administrator enters them, and the Security page warns.

const isoDate = (label: string) =>
  z
    .string()
    .trim()
    .refine((v) => v === "" || isRealDate(v), {
      error: `Enter ${label} as a date (YYYY-MM-DD), or leave it empty if you do not know it.`,
    })
    .transform((v) => (v === "" ? null : v));

function isRealDate(value: string): boolean {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(value);
  if (!m) return false;
  const [year, month, day] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (year < 2000 || year > 2100) return false;
  const date = new Date(Date.UTC(year, month - 1, day));
  return date.getUTCMonth() === month - 1 && date.getUTCDate() === day;
}

export const clientFactsSchema = z.object({
  googlePublishingStatus: z
    .enum(["", "testing", "production"], {
      error: 'Choose "Testing", "In production" or "Not known".',
    })
    .transform((v) => (v === "" ? null : v)),
  googleSecretExpiresOn: isoDate("the Google secret's expiry"),
  microsoftSecretExpiresOn: isoDate("the Microsoft secret's expiry"),
});

/** Stores the facts and audits what changed, in one transaction. */
export async function updateClientCredentialFacts(
  ctx: MemberContext,
  facts: ClientCredentialFacts,
): Promise<{ changed: (keyof ClientCredentialFacts)[] }> {
  const db = await getDb();
  return inTransaction(db, async (tx) => {
    const previous = await getClientCredentialFacts({ db: tx, orgId: ctx.orgId });
    const changed = (Object.keys(facts) as (keyof ClientCredentialFacts)[]).filter(
      (key) => previous[key] !== facts[key],
    );
    if (changed.length === 0) return { changed };
    await setClientCredentialFacts({ db: tx, orgId: ctx.orgId, facts });
    await writeAuditEvent(tx, {
      orgId: ctx.orgId,
      actor: ctx.actor,
      action: "settings.client_facts_changed",
      target: { type: "organization", id: ctx.orgId },
      outcome: "success",
      request: ctx.request,
      metadata: {
        from: Object.fromEntries(changed.map((k) => [k, previous[k]])),
        to: Object.fromEntries(changed.map((k) => [k, facts[k]])),
      },
    });
    return { changed };
  });
}
