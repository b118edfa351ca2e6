"use server";

import { revalidatePath } from "next/cache";
import { z } from "zod";
import { action } from "@/lib/auth/action";
import { chooseNotificationSender } from "@/lib/notifications/settings";

export const setNotificationSenderAction = action(
  {
    permission: "manageSettings",
    name: "notifications.sender",
    schema: z.object({
      // Empty: no sender, dashboard notices only.
      mailboxId: z
        .string()
        .max(64)
        .transform((v) => (v === "" ? null : v)),
    }),
  },
  async ({ mailboxId }, ctx) => {
    await chooseNotificationSender(ctx, mailboxId);
    revalidatePath("/notifications");
    return {
      ok: true,
      message:
        mailboxId === null
          ? "No notification emails: only dashboard notices are shown."
          : "Saved: notification emails are sent from this mailbox.",
    };
  },
);
