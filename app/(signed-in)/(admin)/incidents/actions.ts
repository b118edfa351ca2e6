"use server";

import { revalidatePath } from "next/cache";
import { z } from "zod";
import { getDb } from "@/db";
import { latestJob } from "@/db/queries/jobs";
import { type ActionContext, action } from "@/lib/auth/action";
import { isOperator } from "@/lib/auth/operators";
import { auditDenied, currentSessionToken } from "@/lib/auth/session";
import { cancelJobAudited, REASON_MAX, signEveryoneOut } from "@/lib/incidents/console";
import { clearSwitch, type SwitchScope, setSwitch } from "@/lib/incidents/switches";
import { runJob, startJobInBackground } from "@/lib/jobs";
import { startReencryption } from "@/lib/jobs/reencrypt";
import { countReencryptionKinds } from "@/lib/jobs/reencrypt-items";
import { JobAlreadyRunningError, REVOKE_ALL, startRevokeAll } from "@/lib/jobs/revoke-all";

const reason = z
  .string()
  .trim()
  .min(1, { error: "Say why: the reason is recorded and shown in the banner." })
  .max(REASON_MAX, { error: `At most ${REASON_MAX} characters.` });

const switchSchema = z.discriminatedUnion("on", [
  z.object({ kind: z.enum(["pause_sending", "block_connections"]), on: z.literal("true"), reason }),
  z.object({
    kind: z.enum(["pause_sending", "block_connections"]),
    on: z.literal("false"),
    reason: z.string().max(REASON_MAX).optional(),
  }),
]);

const LABELS = { pause_sending: "Sending", block_connections: "New connections" } as const;

async function flip(input: z.infer<typeof switchSchema>, scope: SwitchScope, ctx: ActionContext) {
  const db = await getDb();
  const change = { db, ctx, kind: input.kind, scope };
  const changed =
    input.on === "true"
      ? await setSwitch({ ...change, reason: input.reason })
      : await clearSwitch(change);
  revalidatePath("/", "layout");
  const what = LABELS[input.kind];
  const where = scope.type === "global" ? " for every organisation" : "";
  if (input.on === "true") {
    return {
      ok: true,
      message: changed
        ? `${what} ${input.kind === "pause_sending" ? "paused" : "blocked"}${where}.`
        : "It was already on.",
    };
  }
  return {
    ok: true,
    message: changed
      ? `${what} ${input.kind === "pause_sending" ? "released" : "unblocked"}${where}.`
      : "It was already off.",
  };
}

/** Pause sending / block connections for the active organisation, or release them. */
export const setSwitchAction = action(
  { permission: "handleIncidents", name: "incidents.switch", schema: switchSchema },
  async (input, ctx) => flip(input, { type: "organization", orgId: ctx.orgId }, ctx),
);

/** The same switches for every organisation: only operators named in OPERATOR_EMAILS. */
export const setGlobalSwitchAction = action(
  { permission: "signedIn", name: "incidents.global_switch", schema: switchSchema },
  async (input, ctx) => {
    if (!(await isOperator({ db: await getDb(), userId: ctx.user.id }))) {
      await auditDenied(ctx, "action:incidents.global_switch", "operator");
      return { message: "Your role does not allow this." };
    }
    return flip(input, { type: "global" }, ctx);
  },
);

export const signEveryoneOutAction = action(
  {
    permission: "handleIncidents",
    name: "incidents.sign_everyone_out",
    schema: z.object({ reason }),
  },
  async (input, ctx) => {
    const result = await signEveryoneOut({
      db: await getDb(),
      ctx,
      keepSessionToken: await currentSessionToken(),
      reason: input.reason,
    });
    return {
      ok: true,
      message: `${result.sessions} session${result.sessions === 1 ? "" : "s"} of ${result.people} ${result.people === 1 ? "person" : "people"} ended. You are still signed in here.${result.invitationsWithdrawn > 0 ? ` ${result.invitationsWithdrawn} waiting invitation${result.invitationsWithdrawn === 1 ? " was" : "s were"} withdrawn: invite again whom you meant to.` : ""}`,
    };
  },
);

// A small organisation's revocation is over before the page would poll; wait that long.
const WAIT_FOR_JOB_MS = 2_000;

export const revokeAllAction = action(
  { permission: "handleIncidents", name: "incidents.revoke_all", schema: z.object({ reason }) },
  async (input, ctx) => {
    const db = await getDb();
    let job: Awaited<ReturnType<typeof startRevokeAll>>;
    try {
      job = await startRevokeAll({ db, ctx, reason: input.reason });
    } catch (error) {
      if (!(error instanceof JobAlreadyRunningError)) throw error;
      return { ok: true, message: error.message };
    }
    const run = runJob(db, job.id);
    run.catch((error) => console.error(`job ${job.id} failed: ${(error as Error).message}`));
    await Promise.race([run, new Promise((resolve) => setTimeout(resolve, WAIT_FOR_JOB_MS))]);
    revalidatePath("/", "layout");
    return {
      ok: true,
      message: `Revoking ${job.total} mailbox${job.total === 1 ? "" : "es"} at their providers; the tokens are destroyed whatever the providers answer.`,
    };
  },
);

export const cancelRevokeAllAction = action(
  { permission: "handleIncidents", name: "incidents.cancel_revoke_all", schema: z.object({}) },
  async (_input, ctx) => {
    const db = await getDb();
    const job = await latestJob({ db, kind: REVOKE_ALL, orgId: ctx.orgId });
    const cancelled = job && (await cancelJobAudited({ db, ctx, jobId: job.id }));
    revalidatePath("/incidents");
    return {
      ok: true,
      message: cancelled
        ? "Cancelled. Mailboxes already revoked stay revoked; the others keep their tokens."
        : "No revocation is under way.",
    };
  },
);

/** Re-encrypts every token of the deployment under the current key: operators only. */
export const reencryptAction = action(
  { permission: "signedIn", name: "incidents.reencrypt", schema: z.object({}) },
  async (_input, ctx) => {
    if (!(await isOperator({ db: await getDb(), userId: ctx.user.id }))) {
      await auditDenied(ctx, "action:incidents.reencrypt", "operator");
      return { message: "Your role does not allow this." };
    }
    const db = await getDb();
    const job = await startReencryption({ db, ctx });
    startJobInBackground(db, job.id);
    revalidatePath("/incidents");
    const { mailboxes, others } = await countReencryptionKinds(db, job.id);
    const plural = (n: number, one: string, many: string) => `${n} ${n === 1 ? one : many}`;
    return {
      ok: true,
      message: `Re-encrypting under the current key: the tokens of ${plural(mailboxes, "mailbox", "mailboxes")} and ${plural(others, "other secret", "other secrets")} (webhook signing secrets, queued message bodies, sign-in verifiers).`,
    };
  },
);
