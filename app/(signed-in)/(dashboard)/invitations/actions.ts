"use server";

import { revalidatePath } from "next/cache";
import { redirect } from "next/navigation";
import { z } from "zod";
import { getDb } from "@/db";
import { action } from "@/lib/auth/action";
import { acceptInvitation, declineInvitation } from "@/lib/auth/organizations";
import { currentSessionToken } from "@/lib/auth/session";

const schema = z.object({ invitationId: z.string().min(1).max(64) });

const REFUSED = {
  not_found: "That invitation is no longer open: it was answered or withdrawn.",
  unverified:
    "Your sign-in provider has not confirmed that you own this address, so invitations to it cannot be answered.",
} as const;

export const acceptInvitationAction = action(
  { permission: "signedIn", name: "invitations.accept", schema },
  async ({ invitationId }, ctx) => {
    const sessionToken = await currentSessionToken();
    if (!sessionToken) return { message: "Your session has ended. Sign in again." };
    const result = await acceptInvitation(await getDb(), { ctx, sessionToken }, invitationId);
    if (!result.ok) return { message: REFUSED[result.reason] };
    revalidatePath("/", "layout");
    redirect("/");
  },
);

export const declineInvitationAction = action(
  { permission: "signedIn", name: "invitations.decline", schema },
  async ({ invitationId }, ctx) => {
    const result = await declineInvitation(await getDb(), ctx, invitationId);
    if (!result.ok) return { message: REFUSED[result.reason] };
    revalidatePath("/", "layout");
    // The row that held the form is gone; the page itself says what happened.
    redirect("/invitations?declined=1");
  },
);
