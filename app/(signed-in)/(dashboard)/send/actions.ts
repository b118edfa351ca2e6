"use server";

import { revalidatePath } from "next/cache";
import { z } from "zod";
import { action } from "@/lib/auth/action";
import { sendOutcomeResult } from "@/lib/mail/form-result";
import { sendMessage } from "@/lib/mail/send";

const lines = (value: string) =>
  value
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter(Boolean);

// The form's fields are plain text; the chokepoint validates the message itself, so the form
// and the API refuse exactly the same things.
export const sendTestMessageAction = action(
  {
    permission: "send",
    name: "messages.send_test",
    schema: z.object({
      mailbox: z.string().min(1, { error: "Choose a mailbox." }),
      to: z.string().default(""),
      subject: z.string().default(""),
      text: z.string().default(""),
    }),
  },
  async (input, ctx) => {
    const outcome = await sendMessage({
      ctx,
      body: {
        type: "value",
        value: {
          mailbox: input.mailbox,
          to: lines(input.to),
          subject: input.subject,
          text: input.text,
        },
      },
      purpose: "dashboard_test",
    });
    revalidatePath("/messages");
    return sendOutcomeResult(outcome);
  },
);
