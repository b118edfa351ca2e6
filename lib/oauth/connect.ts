import "server-only";
import { randomBytes, randomUUID } from "node:crypto";
import * as oidc from "openid-client";
import { getDb } from "@/db";
import {
  deleteStaleOAuthTransactions,
  getMailboxForOrg,
  insertOAuthTransaction,
} from "@/db/queries/mailboxes";
import type { ProviderId } from "@/db/schema";
import { auditUnknownMailbox } from "@/lib/audit/refusals";
import { writeAuditEvent } from "@/lib/audit/write";
import type { MemberContext } from "@/lib/auth/context";
import { assertConnectionsAllowed } from "@/lib/incidents/switches";
import { enforceRateLimit } from "@/lib/ratelimit/runtime";
import { MailboxNotFoundError, ProviderNotConfiguredError } from "./errors";
import { getMailProvider, redirectUriFor } from "./providers";
import { sealCodeVerifier } from "./sealed";

export const TRANSACTION_TTL_MS = 10 * 60 * 1000;

export type StartConnectInput = {
  providerId: ProviderId;
  ctx: MemberContext;
  /** Reconnect: the mailbox to connect again (its address becomes the login hint). */
  mailboxId?: string;
};

/**
 * Records a one-time transaction and returns the provider's authorization URL. The caller has
 * already checked the person may connect mailboxes for the organisation.
 */
export async function startConnect(input: StartConnectInput): Promise<{ url: string }> {
  const { ctx } = input;
  const provider = getMailProvider(input.providerId);
  if (!provider) throw new ProviderNotConfiguredError(input.providerId);
  await enforceRateLimit("oauthStart", [`user:${ctx.actor.id}`, `org:${ctx.orgId}`]);

  const db = await getDb();
  await assertConnectionsAllowed({
    db,
    orgId: ctx.orgId,
    audit: {
      action: "oauth.connect_started",
      actor: ctx.actor,
      request: ctx.request,
      metadata: { provider: provider.id, reconnect: Boolean(input.mailboxId) },
    },
  });
  const mailbox = input.mailboxId
    ? await getMailboxForOrg({ db, orgId: ctx.orgId, mailboxId: input.mailboxId })
    : null;
  if (input.mailboxId && (!mailbox || mailbox.provider !== provider.id)) {
    // Another organisation's id (or a made-up one) is a probe; a provider mismatch is not.
    if (!mailbox) await auditUnknownMailbox(ctx, input.mailboxId, "reconnect");
    throw new MailboxNotFoundError(input.mailboxId);
  }

  const transactionId = randomUUID();
  const state = randomBytes(32).toString("base64url");
  const nonce = randomBytes(32).toString("base64url");
  const verifier = oidc.randomPKCECodeVerifier();
  const scopes = provider.scopesToRequest();
  const redirectUri = redirectUriFor(provider.id);

  const url = new URL(provider.authorizationEndpoint);
  const params: Record<string, string> = {
    client_id: provider.clientId,
    response_type: "code",
    redirect_uri: redirectUri,
    scope: scopes.join(" "),
    state,
    nonce,
    code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
    code_challenge_method: "S256",
    ...provider.authorizationParams({
      hasRefreshToken: mailbox?.hasRefreshToken ?? false,
      ...(mailbox ? { loginHint: mailbox.address } : {}),
    }),
  };
  for (const [name, value] of Object.entries(params)) url.searchParams.set(name, value);

  await db.transaction(async (tx) => {
    await deleteStaleOAuthTransactions({ db: tx, before: new Date(Date.now() - 24 * 3600_000) });
    await insertOAuthTransaction({
      db: tx,
      values: {
        id: transactionId,
        state,
        codeVerifierEnc: sealCodeVerifier(transactionId, verifier),
        nonce,
        provider: provider.id,
        requestedScopes: scopes.join(" "),
        redirectUri,
        mailboxId: mailbox?.id ?? null,
        userId: ctx.actor.id,
        orgId: ctx.orgId,
        expiresAt: new Date(Date.now() + TRANSACTION_TTL_MS),
      },
    });
    await writeAuditEvent(tx, {
      orgId: ctx.orgId,
      actor: ctx.actor,
      action: "oauth.connect_started",
      target: mailbox ? { type: "mailbox", id: mailbox.id } : null,
      outcome: "success",
      request: ctx.request,
      metadata: {
        provider: provider.id,
        scopes,
        reconnect: Boolean(mailbox),
        prompt: params.prompt ?? null,
      },
    });
  });
  return { url: url.toString() };
}
