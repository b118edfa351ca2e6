"use server";

import { revalidatePath } from "next/cache";
import { z } from "zod";
import { action } from "@/lib/auth/action";
import { createApiKey, restrictApiKey, revokeApiKey } from "@/lib/mail/api-keys";

const mailboxIds = z
  .union([z.string(), z.array(z.string())])
  .optional()
  .transform((v) => (v === undefined || v === "" ? [] : Array.isArray(v) ? v : [v]));

export const createApiKeyAction = action(
  {
    permission: "manageApiKeys",
    name: "api_keys.create",
    formFields: { allowedMailboxIds: "mailboxIds", expiresAt: "expiresOn" },
    schema: z.object({
      name: z
        .string()
        .trim()
        .min(1, { error: "Give the key a name, e.g. the service that uses it." })
        .max(100),
      mailboxIds,
      // A date picker's value; the key works until the end of that day (UTC).
      expiresOn: z
        .union([
          z.literal(""),
          z.iso.date({ error: "Give the expiry as a date, or leave it empty." }),
        ])
        .optional()
        .transform((v) => (v ? new Date(`${v}T23:59:59.999Z`) : null)),
    }),
  },
  async ({ name, mailboxIds, expiresOn }, ctx) => {
    const { token } = await createApiKey({
      ctx,
      name,
      allowedMailboxIds: mailboxIds.length > 0 ? mailboxIds : null,
      expiresAt: expiresOn,
    });
    revalidatePath("/api-keys");
    return {
      ok: true,
      message: `Key "${name}" created.`,
      secret: token,
    };
  },
);

export const revokeApiKeyAction = action(
  {
    permission: "manageApiKeys",
    name: "api_keys.revoke",
    schema: z.object({ keyId: z.string().min(1).max(64) }),
  },
  async ({ keyId }, ctx) => {
    await revokeApiKey({ ctx, keyId });
    revalidatePath("/api-keys");
    return { ok: true, message: "Key revoked: requests with it are refused from now on." };
  },
);

export const restrictApiKeyAction = action(
  {
    permission: "manageApiKeys",
    name: "api_keys.restrict",
    formFields: { allowedMailboxIds: "mailboxIds" },
    schema: z.object({ keyId: z.string().min(1).max(64), mailboxIds }),
  },
  async ({ keyId, mailboxIds }, ctx) => {
    await restrictApiKey({
      ctx,
      keyId,
      allowedMailboxIds: mailboxIds.length > 0 ? mailboxIds : null,
    });
    revalidatePath("/api-keys");
    return { ok: true, message: "Mailboxes saved: the key may send only from these now." };
  },
);
