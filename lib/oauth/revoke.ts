import "server-only";
import { type DbOrTx, getDb } from "@/db";
import {
  isAccountInUseElsewhere,
  lockMailboxWithTokens,
  type MailboxTokenRow,
  updateMailbox,
} from "@/db/queries/mailboxes";
import type { Actor } from "@/lib/audit/events";
import { auditUnknownMailbox } from "@/lib/audit/refusals";
import { writeAuditEvent } from "@/lib/audit/write";
import type { CallContext } from "@/lib/auth/context";
import { MailboxNotFoundError } from "./errors";
import { CLEARED_TOKENS } from "./grant-columns";
import { getMailProvider, type MailProvider } from "./providers";
import { openMailboxToken } from "./sealed";
import { isTokenActive, revokeToken } from "./token-endpoint";
import { MANAGE_ACCESS, MICROSOFT_CONSENT_REMOVAL, manualRemoval } from "./withdrawal-words";

export type RevokeMailboxInput = {
  /** A person's or key's context; the revoke-all job acts as the system once its starter is gone. */
  ctx: Pick<CallContext, "orgId" | "request"> & { actor: Actor };
  mailboxId: string;
  /**
   * An earlier attempt may have reached the provider before its process died: where the
   * provider can say that the token is already dead, do not ask it to revoke again.
   */
  mayBeRevokedAlready?: boolean;
  /**
   * The caller listed the organisation's own mailboxes (a job, an erasure): one missing now was
   * removed meanwhile, not probed for, so its absence is not audited as a refusal.
   */
  goneIsExpected?: boolean;
  /** Runs in the revocation's transaction, so that a record of it commits with it or not at all. */
  alsoInTransaction?: (tx: DbOrTx, result: RevokeMailboxResult) => Promise<void>;
};

/**
 * `kept_in_use`: not asked to revoke, because revoking there ends every grant of the account
 * (Google) and another mailbox row still holds a token of the same account.
 */
export type ProviderRevocationResult = "revoked" | "not_supported" | "failed" | "kept_in_use";

export type RevokeMailboxResult = {
  providerResult: ProviderRevocationResult;
  /** Plain words for the person who pressed Revoke. */
  detail: string;
};

const MICROSOFT_GUIDANCE =
  "Microsoft offers apps no way to revoke their own permission. Mailwarden deleted its copy " +
  "of the tokens, so it can no longer send from this mailbox, but Microsoft keeps the consent " +
  `until someone removes it: ${MICROSOFT_CONSENT_REMOVAL}.`;

type ProviderAnswer = RevokeMailboxResult & {
  httpStatus: number | null;
  error: string | null;
  /** The request reached (or may have reached) the provider and ended the grant there. */
  endedAtProvider?: boolean;
};

function failed(
  provider: MailProvider | null,
  why: string,
  httpStatus: number | null,
  error: string | null,
) {
  return {
    providerResult: "failed",
    detail: `${why} Mailwarden deleted its copy of the tokens anyway, so it can no longer send from this mailbox. To be sure, remove Mailwarden's access ${manualRemoval(provider)}.`,
    httpStatus,
    error,
  } as const;
}

function heldToken(row: MailboxTokenRow) {
  if (row.refreshTokenEnc) {
    const token = openMailboxToken(row.id, "refresh_token", row.refreshTokenEnc);
    return { token, hint: "refresh_token" as const };
  }
  if (row.accessTokenEnc) {
    const token = openMailboxToken(row.id, "access_token", row.accessTokenEnc);
    return { token, hint: "access_token" as const };
  }
  return null;
}

function keptInUse(provider: MailProvider): ProviderAnswer {
  const where = MANAGE_ACCESS[provider.id];
  const removal = where
    ? `removing Mailwarden's access at ${where}`
    : "removing Mailwarden's access in the account's security settings";
  return {
    providerResult: "kept_in_use",
    detail:
      `Mailwarden deleted its copy of this mailbox's tokens, so it can no longer send from it. ` +
      `It did not ask ${provider.label} to revoke the permission: ${provider.label} ends every ` +
      "grant of the account at once, and another mailbox connected to Mailwarden (here or in " +
      "another organisation) still uses this account. The permission ends when the last of " +
      `them is disconnected; ${removal} ends it now, for all of them.`,
    httpStatus: null,
    error: null,
  };
}

async function revokeAtProvider(
  tx: DbOrTx,
  row: MailboxTokenRow,
  mayBeRevokedAlready = false,
): Promise<ProviderAnswer> {
  const provider = getMailProvider(row.provider);
  if (provider && !provider.revocationEndpoint) {
    return {
      providerResult: "not_supported",
      detail: MICROSOFT_GUIDANCE,
      httpStatus: null,
      error: null,
    };
  }
  const label = provider?.label ?? row.provider;
  if (!provider)
    return failed(null, `${label} is not configured here, so it could not be told.`, null, null);
  if (
    provider.revocationEndsAccountGrants &&
    (await isAccountInUseElsewhere({ db: tx, mailbox: row }))
  ) {
    return keptInUse(provider);
  }

  // The refresh token stands for the whole grant: revoking it ends its access tokens too.
  let held: ReturnType<typeof heldToken>;
  try {
    held = heldToken(row);
  } catch {
    return failed(
      provider,
      "Mailwarden could not read its stored token (key missing?).",
      null,
      null,
    );
  }
  if (!held) {
    return failed(
      provider,
      `Mailwarden held no token for this mailbox any more, so there was nothing to revoke at ${label}.`,
      null,
      null,
    );
  }
  if (mayBeRevokedAlready && (await isTokenActive(provider, held.token, held.hint)) === false) {
    return {
      providerResult: "revoked",
      detail: `${label} confirmed that Mailwarden's permission for this mailbox is revoked.`,
      httpStatus: null,
      error: null,
      endedAtProvider: true,
    };
  }
  const answer = await revokeToken(provider, held.token, held.hint);
  if (answer.ok) {
    return {
      providerResult: "revoked",
      detail: `${label} confirmed that Mailwarden's permission for this mailbox is revoked.`,
      httpStatus: answer.status,
      error: null,
      endedAtProvider: true,
    };
  }
  const bodyError = (answer.body as { error?: unknown } | null)?.error;
  const error =
    typeof bodyError === "string" ? bodyError.slice(0, 64) : (answer.networkError ?? null);
  const why =
    answer.status === null
      ? `${label} did not answer the revocation request.`
      : `${label} refused the revocation request (HTTP ${answer.status}).`;
  // Unanswered, the request may still have arrived and ended the grant.
  return {
    ...failed(provider, why, answer.status, error),
    endedAtProvider: answer.status === null,
  };
}

/**
 * Disconnects a mailbox: revokes the grant at the provider where it can, then deletes the
 * tokens here whatever the provider answered. The mailbox can be connected again later. Where
 * revoking would end the grants of the account's other mailboxes too (Google), and another row
 * still holds a token of the account, only the tokens here are deleted (`kept_in_use`).
 */
export async function revokeMailbox(input: RevokeMailboxInput): Promise<RevokeMailboxResult> {
  const db = await getDb();
  const revoked = await db.transaction(async (tx) => {
    // The lock keeps a refresh from rotating the token between revoking it and deleting it.
    const row = await lockMailboxWithTokens({
      db: tx,
      mailboxId: input.mailboxId,
      orgId: input.ctx.orgId,
    });
    if (!row) return null;
    const answer = await revokeAtProvider(tx, row, input.mayBeRevokedAlready);
    // Stamped after the answer, so it is never earlier than the moment the grant ended there.
    const providerRevokedAt = answer.endedAtProvider ? { providerRevokedAt: new Date() } : {};
    await updateMailbox({
      db: tx,
      mailboxId: row.id,
      set: {
        status: "revoked",
        ...providerRevokedAt,
        ...CLEARED_TOKENS,
        lastErrorCode: null,
        lastErrorCause: null,
        failureCount: 0,
        retryAfter: null,
      },
    });
    await writeAuditEvent(tx, {
      orgId: row.orgId,
      actor: input.ctx.actor,
      action: "mailbox.revoked",
      target: { type: "mailbox", id: row.id },
      outcome: answer.providerResult === "failed" ? "failure" : "success",
      request: input.ctx.request,
      metadata: {
        provider: row.provider,
        address: row.address,
        previousStatus: row.status,
        providerResult: answer.providerResult,
        providerHttpStatus: answer.httpStatus,
        providerError: answer.error,
        localCopyDeleted: true,
      },
    });
    const result = { providerResult: answer.providerResult, detail: answer.detail };
    await input.alsoInTransaction?.(tx, result);
    return result;
  });
  if (revoked) return revoked;
  // Audited outside the transaction, which wrote nothing: another organisation's id is a probe.
  if (!input.goneIsExpected) await auditUnknownMailbox(input.ctx, input.mailboxId, "revoke");
  throw new MailboxNotFoundError(input.mailboxId);
}
