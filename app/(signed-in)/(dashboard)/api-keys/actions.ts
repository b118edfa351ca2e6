"use server";

import { revalidatePath } from "next/cache";
import { z } from "zod";
import { action } from "@/lib/auth/action";
import { createApiKey, revokeApiKey } from "@/lib/mail/api-keys";

export const createApiKeyAction = action(
  {
    permission: "manageApiKeys",
    name: "api_keys.create",
    formFields: { allowedMailboxIds: "mailboxIds" },
    schema: z.object({
      name: z
        .string()
        .trim()
        .min(1, { error: "Give the key a name, e.g. the service that uses it." })
        .max(100),
      mailboxIds: z
        .union([z.string(), z.array(z.string())])
        .optional()
        .transform((v) => (v === undefined || v === "" ? [] : Array.isArray(v) ? v : [v])),
    }),
  },
  async ({ name, mailboxIds }, ctx) => {
    const { token } = await createApiKey({
      ctx,
      name,
      allowedMailboxIds: mailboxIds.length > 0 ? mailboxIds : null,
    });
    revalidatePath("/api-keys");
    return {
      ok: true,
      message: `Key "${name}" created. Copy it now: it is not shown again.`,
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
