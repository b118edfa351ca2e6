"use server";

import { revalidatePath } from "next/cache";
import { redirect } from "next/navigation";
import { z } from "zod";
import { action } from "@/lib/auth/action";
import { eraseSubject, recordDataRequest } from "@/lib/privacy/requests";

const DAY_MS = 86_400_000;

export const recordRequestAction = action(
  {
    permission: "handlePrivacy",
    name: "privacy.record_request",
    schema: z.object({
      kind: z.enum(["export", "erasure"], { error: "Choose export or erasure." }),
      email: z.email({ error: "Enter the email address the request is about." }).max(320),
      receivedOn: z
        .string()
        .regex(/^\d{4}-\d{2}-\d{2}$/, { error: "Enter the date the request arrived." })
        .transform((v) => new Date(`${v}T00:00:00Z`))
        .refine((d) => !Number.isNaN(d.getTime()), { error: "Enter a real date." })
        .refine((d) => d.getTime() <= Date.now(), { error: "The date cannot be in the future." })
        .refine((d) => d.getTime() > Date.now() - 366 * DAY_MS, {
          error: "The date must lie within the last year.",
        }),
    }),
  },
  async ({ kind, email, receivedOn }, ctx) => {
    // Today's requests count from now: their month ends at this time of day.
    const today = new Date().toISOString().slice(0, 10) === receivedOn.toISOString().slice(0, 10);
    const row = await recordDataRequest(ctx, {
      kind,
      email,
      receivedAt: today ? new Date() : receivedOn,
    });
    revalidatePath("/privacy");
    redirect(`/privacy/${row.id}`);
  },
);

export const eraseAction = action(
  {
    permission: "handlePrivacy",
    name: "privacy.erase",
    schema: z.object({
      requestId: z.string().min(1).max(64),
      confirm: z.literal("erase", { error: "Type erase to confirm." }),
    }),
  },
  async ({ requestId }, ctx) => {
    const result = await eraseSubject(ctx, requestId);
    if (result.kind === "not_found") return { message: "No such open erasure request." };
    if (result.kind === "refused") return { message: result.reason };
    revalidatePath("/privacy");
    revalidatePath(`/privacy/${requestId}`);
    return { ok: true, message: "Erased. The receipt is below." };
  },
);
