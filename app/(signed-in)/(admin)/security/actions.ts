"use server";

import { revalidatePath } from "next/cache";
import { action } from "@/lib/auth/action";
import { clientFactsSchema, updateClientCredentialFacts } from "@/lib/security/client-facts";

export const setClientFactsAction = action(
  { permission: "manageSettings", name: "security.client_facts", schema: clientFactsSchema },
  async (facts, ctx) => {
    const { changed } = await updateClientCredentialFacts(ctx, facts);
    revalidatePath("/security");
    return { ok: true, message: changed.length === 0 ? "Nothing changed." : "Saved." };
  },
);
