"use server";

import { revalidatePath } from "next/cache";
import { z } from "zod";
import { action } from "@/lib/auth/action";
import { formatDateTime } from "@/lib/utils";
import {
  createEndpoint,
  deleteEndpoint,
  rotateEndpointSecret,
  sendTestDelivery,
  setEndpointEnabled,
  updateEndpoint,
} from "@/lib/webhooks/endpoints";
import { WEBHOOK_EVENT_TYPES } from "@/lib/webhooks/event-types";

const endpointId = z.string().min(1).max(64);

const endpointFields = {
  // Checked for real (scheme, resolution, addresses) by lib/webhooks, which names the field.
  url: z.string().trim().min(1, { error: "Enter the URL that receives the webhooks." }).max(2_000),
  description: z.string().trim().max(200).optional().default(""),
  events: z
    .union([z.string(), z.array(z.string())])
    .optional()
    .transform((v) => (v === undefined || v === "" ? [] : Array.isArray(v) ? v : [v]))
    .pipe(
      z.array(z.enum(WEBHOOK_EVENT_TYPES, { error: "is not an event Mailwarden sends" })).min(1, {
        error: "Choose at least one event.",
      }),
    ),
};

export const createWebhookEndpointAction = action(
  {
    permission: "manageWebhooks",
    name: "webhooks.create",
    schema: z.object(endpointFields),
  },
  async (input, ctx) => {
    const { secret } = await createEndpoint(ctx, input);
    revalidatePath("/webhooks");
    return { ok: true, message: "Endpoint created.", secret };
  },
);

export const updateWebhookEndpointAction = action(
  {
    permission: "manageWebhooks",
    name: "webhooks.update",
    schema: z.object({
      endpointId,
      ...endpointFields,
      enabled: z.enum(["true", "false"]).transform((v) => v === "true"),
    }),
  },
  async ({ endpointId, ...input }, ctx) => {
    await updateEndpoint(ctx, endpointId, input);
    revalidatePath(`/webhooks/${endpointId}`);
    return { ok: true, message: "Saved." };
  },
);

export const setWebhookEndpointEnabledAction = action(
  {
    permission: "manageWebhooks",
    name: "webhooks.enable",
    schema: z.object({
      endpointId,
      enabled: z.enum(["true", "false"]).transform((v) => v === "true"),
    }),
  },
  async ({ endpointId, enabled }, ctx) => {
    const { cancelled } = await setEndpointEnabled(ctx, endpointId, enabled);
    revalidatePath(`/webhooks/${endpointId}`);
    return {
      ok: true,
      message: enabled
        ? "Turned on: new events are delivered."
        : `Turned off: no new deliveries${cancelled > 0 ? `, and the ${cancelled.toLocaleString("en")} waiting ${cancelled === 1 ? "was" : "were"} cancelled` : ""}.`,
    };
  },
);

export const deleteWebhookEndpointAction = action(
  {
    permission: "manageWebhooks",
    name: "webhooks.delete",
    schema: z.object({ endpointId }),
  },
  async ({ endpointId }, ctx) => {
    await deleteEndpoint(ctx, endpointId);
    revalidatePath("/webhooks");
    return { ok: true, message: "Endpoint deleted with its deliveries." };
  },
);

export const rotateWebhookSecretAction = action(
  {
    permission: "manageWebhooks",
    name: "webhooks.rotate_secret",
    schema: z.object({ endpointId }),
  },
  async ({ endpointId }, ctx) => {
    const { secret, previousValidUntil } = await rotateEndpointSecret(ctx, endpointId);
    revalidatePath(`/webhooks/${endpointId}`);
    return {
      ok: true,
      message: previousValidUntil
        ? `New secret made. The previous one also signs until ${formatDateTime(previousValidUntil)}: switch your receiver before then.`
        : "New secret made. The previous one no longer signs.",
      secret,
    };
  },
);

export const sendWebhookTestAction = action(
  {
    permission: "manageWebhooks",
    name: "webhooks.test",
    schema: z.object({ endpointId }),
  },
  async ({ endpointId }, ctx) => {
    await sendTestDelivery(ctx, endpointId);
    revalidatePath(`/webhooks/${endpointId}`);
    return { ok: true, message: "Test delivery queued: it appears below with the answer." };
  },
);
