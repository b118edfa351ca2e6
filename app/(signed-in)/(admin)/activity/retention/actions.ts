"use server";

import { revalidatePath } from "next/cache";
import { z } from "zod";
import { getDb, inTransaction } from "@/db";
import { getRetentionSettings, setRetentionSettings } from "@/db/queries/organization-settings";
import { writeAuditEvent } from "@/lib/audit/write";
import { action } from "@/lib/auth/action";

// Ten years at most: anything longer is "keep forever", which is the empty field.
const MAX_DAYS = 3650;

/** A number of days, or empty for "keep forever"; `what` names the data in the messages. */
function days(what: string) {
  return z
    .string({ error: "Enter a whole number of days, or leave empty to keep forever." })
    .trim()
    .regex(/^\d*$/, { error: "Enter a whole number of days, or leave empty to keep forever." })
    .transform((v) => (v === "" ? null : Number(v)))
    .pipe(
      z
        .number()
        .int()
        .min(1, { error: `Keep ${what} for at least 1 day.` })
        .max(MAX_DAYS, { error: `At most ${MAX_DAYS} days; leave empty to keep forever.` })
        .nullable(),
    );
}

/** "Activity is kept forever." or "Activity is purged after 30 days." */
function sentence(what: string, removed: string, days: number | null) {
  return `${what} ${days === null ? "kept forever" : `${removed} after ${days} days`}.`;
}

export const setRetentionAction = action(
  {
    permission: "manageSettings",
    name: "activity.retention",
    schema: z.object({
      auditDays: days("events"),
      messageDays: days("recipients and subjects"),
      networkDays: days("IP addresses and user agents"),
    }),
  },
  async (settings, ctx) => {
    const db = await getDb();
    await inTransaction(db, async (tx) => {
      const previous = await getRetentionSettings({ db: tx, orgId: ctx.orgId });
      await setRetentionSettings({ db: tx, orgId: ctx.orgId, settings });
      await writeAuditEvent(tx, {
        orgId: ctx.orgId,
        actor: ctx.actor,
        action: "settings.retention_changed",
        target: { type: "organization", id: ctx.orgId },
        outcome: "success",
        request: ctx.request,
        metadata: { from: previous, to: settings },
      });
    });
    revalidatePath("/activity/retention");
    return {
      ok: true,
      message: [
        sentence("Activity is", "purged", settings.auditDays),
        sentence("Message recipients and subjects are", "removed", settings.messageDays),
        sentence("IP addresses and user agents in activity are", "removed", settings.networkDays),
      ].join(" "),
    };
  },
);
