"use server";

import { revalidatePath } from "next/cache";
import { redirect } from "next/navigation";
import { z } from "zod";
import { getDb } from "@/db";
import { getMailboxForOrg } from "@/db/queries/mailboxes";
import { PROVIDER_IDS } from "@/db/schema";
import { action } from "@/lib/auth/action";
import { pauseMailbox, REASON_MAX } from "@/lib/incidents/console";
import { sendOutcomeResult } from "@/lib/mail/form-result";
import { testConnection } from "@/lib/mail/send";
import { closeMailboxTransport } from "@/lib/mail/transport";
import { startConnect } from "@/lib/oauth/connect";
import { MailboxNotFoundError } from "@/lib/oauth/errors";
import { revokeMailbox } from "@/lib/oauth/revoke";

export const startConnectAction = action(
  {
    permission: "manageMailboxes",
    name: "mailboxes.connect",
    schema: z.object({
      provider: z.enum(PROVIDER_IDS),
      mailboxId: z.string().max(64).optional(),
    }),
  },
  async ({ provider, mailboxId }, ctx) => {
    const { url } = await startConnect({
      providerId: provider,
      ctx,
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
    const result = await revokeMailbox({ ctx, mailboxId });
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

/**
 * "Retry now" for a mailbox waiting for an administrator (e.g. SMTP AUTH was disabled): the
 * connection test; when it passes, the mailbox is connected again (audited, people told).
 */
export const retryMailboxAction = action(
  {
    permission: "manageMailboxes",
    name: "mailboxes.retry",
    schema: z.object({ mailboxId: z.string().min(1).max(64) }),
  },
  async ({ mailboxId }, ctx) => {
    const outcome = await testConnection({ ctx, mailboxId, isAdminRetry: true });
    revalidatePath("/", "layout");
    if (outcome.kind === "connected") {
      return { ok: true, message: `${outcome.address} works again and is connected.` };
    }
    return sendOutcomeResult(outcome);
  },
);

const STILL_WAITING: Partial<Record<string, string>> = {
  admin_action_required: "it still needs an administrator, as before the pause",
  needs_reconnect: "it still needs to be reconnected, as before the pause",
};

function pauseMessage(address: string, paused: boolean, status: string) {
  if (paused) return `${address} is paused: nothing is sent from it until it is resumed.`;
  const waiting = STILL_WAITING[status];
  return waiting ? `${address} is resumed, but ${waiting}.` : `${address} is resumed.`;
}

/** Pauses one mailbox (a reason is required) or resumes it; nothing is sent from it meanwhile. */
export const pauseMailboxAction = action(
  {
    permission: "manageMailboxes",
    name: "mailboxes.pause",
    schema: z.discriminatedUnion("paused", [
      z.object({
        mailboxId: z.string().min(1).max(64),
        paused: z.literal("true"),
        reason: z
          .string()
          .trim()
          .min(1, { error: "Say why: the reason is recorded." })
          .max(REASON_MAX, { error: `At most ${REASON_MAX} characters.` }),
      }),
      z.object({
        mailboxId: z.string().min(1).max(64),
        paused: z.literal("false"),
        reason: z.string().max(REASON_MAX).optional(),
      }),
    ]),
  },
  async (input, ctx) => {
    const db = await getDb();
    const paused = input.paused === "true";
    const row = await pauseMailbox({
      db,
      ctx,
      mailboxId: input.mailboxId,
      paused,
      reason: input.reason ?? "",
    });
    revalidatePath("/", "layout");
    if (row) {
      return { ok: true, message: pauseMessage(row.address, paused, row.status) };
    }
    const existing = await getMailboxForOrg({ db, orgId: ctx.orgId, mailboxId: input.mailboxId });
    if (!existing) return { message: new MailboxNotFoundError(input.mailboxId).message };
    if ((existing.status === "paused") === paused) {
      return { ok: true, message: paused ? "It was already paused." : "It is not paused." };
    }
    return { message: "A revoked mailbox cannot be paused; connect it again first." };
  },
);
