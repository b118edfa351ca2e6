"use server";

import { revalidatePath } from "next/cache";
import { z } from "zod";
import { getDb } from "@/db";
import { markNoticeRead } from "@/db/queries/notices";
import { action } from "@/lib/auth/action";

const dismissNotice = action(
  {
    permission: "view",
    name: "notices.dismiss",
    schema: z.object({ noticeId: z.string().min(1).max(64) }),
  },
  async ({ noticeId }, ctx) => {
    await markNoticeRead({ db: await getDb(), orgId: ctx.orgId, userId: ctx.user.id, noticeId });
    revalidatePath("/", "layout");
    return { ok: true };
  },
);

export async function dismissNoticeAction(formData: FormData): Promise<void> {
  await dismissNotice({}, formData);
}
