"use server";

import { revalidatePath } from "next/cache";
import { z } from "zod";
import { action } from "@/lib/auth/action";
import { cancelMessage } from "@/lib/mail/queued";

// Cancelling a queued or retrying message (ARCHITECTURE.md, "Queued messages"): anyone who may
// send. Another organisation's id, or one no longer waiting, gets the same answer.
export const cancelMessageAction = action(
  {
    permission: "send",
    name: "messages.cancel",
    schema: z.object({ messageId: z.string().min(1).max(64) }),
  },
  async ({ messageId }, ctx) => {
    const result = await cancelMessage(ctx, messageId);
    if (!result.ok) return { message: result.cause };
    revalidatePath("/messages");
    return { ok: true, message: "Cancelled: it will not be sent." };
  },
);
