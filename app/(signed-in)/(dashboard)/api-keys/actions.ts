"use server";

import { revalidatePath } from "next/cache";
import { z } from "zod";
import { type ActionContext, action } from "@/lib/auth/action";
import {
  ApiKeyInputError,
  ApiKeyNotFoundError,
  createApiKey,
  revokeApiKey,
} from "@/lib/mail/api-keys";

const manager = (ctx: ActionContext) => ({
  userId: ctx.user.id,
  role: ctx.role,
  label: ctx.user.email ?? undefined,
});

function knownError(error: unknown) {
  if (error instanceof ApiKeyInputError) {
    const field = error.field === "allowedMailboxIds" ? "mailboxIds" : error.field;
    return { fieldErrors: { [field]: [error.message] } };
  }
  if (error instanceof ApiKeyNotFoundError) return { message: error.message };
  throw error;
}

export const createApiKeyAction = action(
  {
    permission: "manageApiKeys",
    name: "api_keys.create",
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
    try {
      const { token } = await createApiKey({
        orgId: ctx.orgId,
        actor: manager(ctx),
        name,
        allowedMailboxIds: mailboxIds.length > 0 ? mailboxIds : null,
        request: ctx.request,
      });
      revalidatePath("/api-keys");
      return {
        ok: true,
        message: `Key "${name}" created. Copy it now: it is not shown again.`,
        secret: token,
      };
    } catch (error) {
      return knownError(error);
    }
  },
);

export const revokeApiKeyAction = action(
  {
    permission: "manageApiKeys",
    name: "api_keys.revoke",
    schema: z.object({ keyId: z.string().min(1).max(64) }),
  },
  async ({ keyId }, ctx) => {
    try {
      await revokeApiKey({ orgId: ctx.orgId, actor: manager(ctx), keyId, request: ctx.request });
    } catch (error) {
      return knownError(error);
    }
    revalidatePath("/api-keys");
    return { ok: true, message: "Key revoked: requests with it are refused from now on." };
  },
);
