"use server";

import { revalidatePath } from "next/cache";
import { redirect } from "next/navigation";
import { z } from "zod";
import { action } from "@/lib/auth/action";
import { sendOutcomeResult } from "@/lib/mail/form-result";
import { testConnection } from "@/lib/mail/send";
import { closeMailboxTransport } from "@/lib/mail/transport";
import { startConnect } from "@/lib/oauth/connect";
import { PROVIDER_IDS } from "@/lib/oauth/providers";
import { revokeMailbox } from "@/lib/oauth/revoke";

export const startConnectAction = action(
  {
    permission: "manageMailboxes",
    name: "mailboxes.connect",
    schema: z.object({
      provider: z.enum(PROVIDER_IDS as [string, ...string[]]),
      mailboxId: z.string().max(64).optional(),
    }),
  },
  async ({ provider, mailboxId }, ctx) => {
    const { url } = await startConnect({
      providerId: provider as (typeof PROVIDER_IDS)[number],
      orgId: ctx.orgId,
      userId: ctx.user.id,
      actor: ctx.actor,
      request: ctx.request,
      mailboxId: mailboxId || undefined,
    });
    redirect(url);
  },
);

export const revokeMailboxAction = action(
  {
    permission: "manageMailboxes",
    name: "mailboxes.revoke",
    schema: z.object({ mailboxId: z.string().min(1).max(64) }),
  },
  async ({ mailboxId }, ctx) => {
    const result = await revokeMailbox({
      orgId: ctx.orgId,
      mailboxId,
      actor: ctx.actor,
      request: ctx.request,
    });
    closeMailboxTransport(mailboxId);
    revalidatePath("/mailboxes");
    return { ok: result.providerResult !== "failed", message: result.detail };
  },
);

export const testConnectionAction = action(
  {
    permission: "send",
    name: "mailboxes.test_connection",
    schema: z.object({ mailboxId: z.string().min(1).max(64) }),
  },
  async ({ mailboxId }, ctx) => {
    const outcome = await testConnection({ ctx, mailboxId });
    revalidatePath("/mailboxes");
    return sendOutcomeResult(outcome);
  },
);
