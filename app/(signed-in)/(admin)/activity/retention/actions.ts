"use server";

import { revalidatePath } from "next/cache";
import { z } from "zod";
import { getDb, inTransaction } from "@/db";
import { getAuditRetentionDays, setAuditRetentionDays } from "@/db/queries/organization-settings";
import { writeAuditEvent } from "@/lib/audit/write";
import { action } from "@/lib/auth/action";

// Ten years at most: anything longer is "keep forever", which is the empty field.
const MAX_DAYS = 3650;

export const setRetentionAction = action(
  {
    permission: "manageSettings",
    name: "activity.retention",
    schema: z.object({
      days: z
        .string()
        .trim()
        .regex(/^\d*$/, { error: "Enter a whole number of days, or leave empty to keep forever." })
        .transform((v) => (v === "" ? null : Number(v)))
        .pipe(
          z
            .number()
            .int()
            .min(1, { error: "Keep events for at least 1 day." })
            .max(MAX_DAYS, { error: `At most ${MAX_DAYS} days; leave empty to keep forever.` })
            .nullable(),
        ),
    }),
  },
  async ({ days }, ctx) => {
    const db = await getDb();
    await inTransaction(db, async (tx) => {
      const previous = await getAuditRetentionDays({ db: tx, orgId: ctx.orgId });
      await setAuditRetentionDays({ db: tx, orgId: ctx.orgId, days });
      await writeAuditEvent(tx, {
        orgId: ctx.orgId,
        actor: ctx.actor,
        action: "settings.retention_changed",
        target: { type: "organization", id: ctx.orgId },
        outcome: "success",
        ...ctx.request,
        metadata: { from: previous, to: days },
      });
    });
    revalidatePath("/activity/retention");
    return {
      ok: true,
      message:
        days === null
          ? "Activity is kept forever."
          : `Activity older than ${days} days is purged daily.`,
    };
  },
);
