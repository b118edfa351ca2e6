"use server";

import { revalidatePath } from "next/cache";
import { redirect } from "next/navigation";
import { z } from "zod";
import { getDb } from "@/db";
import { action } from "@/lib/auth/action";
import { switchOrganization } from "@/lib/auth/organizations";
import { currentSessionToken } from "@/lib/auth/session";

export const switchOrganizationAction = action(
  {
    permission: "signedIn",
    name: "organizations.switch",
    schema: z.object({ orgId: z.string().min(1, { error: "Choose an organisation." }).max(64) }),
  },
  async ({ orgId }, ctx) => {
    if (orgId === ctx.orgId) return { ok: true };
    const sessionToken = await currentSessionToken();
    if (!sessionToken) return { message: "Your session has ended. Sign in again." };
    const result = await switchOrganization(await getDb(), { ctx, sessionToken }, orgId);
    if (!result.ok) {
      return {
        message: "You are not a member of that organisation.",
        fieldErrors: { orgId: ["Not a member."] },
      };
    }
    // The page in view may not exist for the role held in the other organisation.
    revalidatePath("/", "layout");
    redirect("/");
  },
);
