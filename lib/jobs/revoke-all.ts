import "server-only";
import { sql } from "drizzle-orm";
import type { Database, DbOrTx } from "@/db";
import { latestJob, listJobItems } from "@/db/queries/jobs";
import { listMailboxes, listMailboxIdsWithTokens } from "@/db/queries/mailboxes";
import { writeAuditEvent } from "@/lib/audit/write";
import type { CallContext } from "@/lib/auth/context";
import { closeMailboxTransport } from "@/lib/mail/transport";
import { MailboxNotFoundError } from "@/lib/oauth/errors";
import { getMailProvider } from "@/lib/oauth/providers";
import { type ProviderRevocationResult, revokeMailbox } from "@/lib/oauth/revoke";
import { manualRemoval } from "@/lib/oauth/withdrawal-words";
import { createJob, registerJobHandler } from "./runner";

// "Revoke every mailbox": each mailbox of the organisation that holds a token is revoked at its
// provider and its tokens destroyed, whatever the provider answers, a few at a time. The item's
// result commits in the revocation's own transaction, so a finished mailbox is never revoked
// again when the job is resumed after a restart.

export const REVOKE_ALL = "revoke_all_mailboxes";

export const REVOKE_RESULTS: Record<ProviderRevocationResult, string> = {
  revoked: "revoked",
  failed: "provider_refused",
  not_supported: "no_endpoint",
  kept_in_use: "kept_in_use",
};

export const REVOKE_RESULT_LABELS: Record<string, string> = {
  revoked: "Revoked at the provider",
  provider_refused: "Provider refused or did not answer; tokens destroyed here",
  no_endpoint: "Provider has no revocation endpoint; tokens destroyed here",
  kept_in_use:
    "Not revoked at the provider: another connected mailbox uses the same account; tokens destroyed here",
  gone: "Mailbox no longer exists",
  error: "Failed: not revoked, tokens kept, still connected",
};

const SYSTEM_REQUEST = { ip: null, userAgent: null };

/** Mailboxes revoked at once: the most a cancel can find in flight. */
export const REVOKE_ALL_CONCURRENCY = 8;

registerJobHandler({
  kind: REVOKE_ALL,
  concurrency: REVOKE_ALL_CONCURRENCY,
  // The tokens are destroyed whatever the provider answered (ARCHITECTURE.md), but a grant the
  // provider did not confirm ending may still be alive there: the job's end says how many.
  report: (counts) => {
    const refused = counts.find((c) => c.result === REVOKE_RESULTS.failed)?.count ?? 0;
    return { warning: refused > 0, metadata: { notRevokedAtProvider: refused } };
  },
  runItem: async (item, ctx) => {
    const orgId = ctx.job.orgId;
    if (!orgId) return { result: "error", detail: "job without organisation" };
    try {
      await revokeMailbox({
        ctx: {
          orgId,
          actor: ctx.job.createdBy
            ? { type: "user", id: ctx.job.createdBy, label: "revoke every mailbox" }
            : { type: "system", label: "revoke every mailbox" },
          request: SYSTEM_REQUEST,
        },
        mailboxId: item.itemId,
        mayBeRevokedAlready: ctx.wasStarted,
        goneIsExpected: true,
        alsoInTransaction: (tx, result) =>
          ctx.finish(tx, { result: REVOKE_RESULTS[result.providerResult], detail: result.detail }),
      });
    } catch (error) {
      if (error instanceof MailboxNotFoundError) return { result: "gone", detail: null };
      throw error;
    }
    closeMailboxTransport(item.itemId);
    return undefined;
  },
});

export class JobAlreadyRunningError extends Error {
  constructor() {
    super("A revocation of every mailbox is already under way; cancel it or wait for it.");
    this.name = "JobAlreadyRunningError";
  }
}

/** Creates the job (one item per mailbox holding a token) and audits who started it and why. */
export async function startRevokeAll({
  db,
  ctx,
  reason,
}: {
  db: Database;
  ctx: CallContext;
  reason: string;
}) {
  const { orgId, actor, request } = ctx;
  return db.transaction(async (tx) => {
    // Two people pressing at once would otherwise both find no job under way.
    await tx.execute(sql`select pg_advisory_xact_lock(hashtext(${`${REVOKE_ALL}:${orgId}`}))`);
    const previous = await latestJob({ db: tx, kind: REVOKE_ALL, orgId });
    if (previous && (previous.status === "queued" || previous.status === "running")) {
      throw new JobAlreadyRunningError();
    }
    const boxes = await listMailboxIdsWithTokens({ db: tx, orgId });
    const job = await createJob({
      db: tx,
      kind: REVOKE_ALL,
      orgId,
      createdBy: actor.type === "user" ? actor.id : null,
      reason,
      items: boxes.map((b) => ({ itemId: b.id, label: b.address })),
    });
    await writeAuditEvent(tx, {
      orgId,
      actor,
      action: "job.started",
      target: { type: "job", id: job.id },
      outcome: "success",
      request: request,
      metadata: { kind: REVOKE_ALL, mailboxes: boxes.length, reason },
    });
    return job;
  });
}

/**
 * The console's warning about mailboxes the provider did not confirm revoking (it refused or did
 * not answer): their tokens are gone here, the grant may live on there until removed by hand.
 * Null when there are none.
 */
export async function providerRevocationWarning({
  db,
  orgId,
  jobId,
}: {
  db: DbOrTx;
  orgId: string;
  jobId: string;
}): Promise<string | null> {
  const refused = (await listJobItems({ db, jobId })).filter(
    (i) => i.result === REVOKE_RESULTS.failed,
  );
  if (refused.length === 0) return null;
  const ids = new Set(refused.map((i) => i.itemId));
  const boxes = (await listMailboxes({ db, orgId })).filter((m) => ids.has(m.id));
  const byProvider = new Map<string, string[]>();
  for (const box of boxes) {
    byProvider.set(box.provider, [...(byProvider.get(box.provider) ?? []), box.address]);
  }
  const where = [...byProvider].map(
    ([providerId, addresses]) =>
      `for ${addresses.join(", ")} ${manualRemoval(getMailProvider(providerId))}`,
  );
  const n = refused.length;
  return `${n} ${n === 1 ? "mailbox was" : "mailboxes were"} not revoked at the provider (it refused or did not answer). Their tokens are destroyed here, but the provider may still hold the permission: remove Mailwarden's access by hand, ${where.join("; ")}.`;
}
