import "server-only";
import { getDb } from "@/db";
import { getMailboxForOrg } from "@/db/queries/mailboxes";
import { claimMessage, finishMessage } from "@/db/queries/messages";
import { withoutAddresses } from "@/lib/audit/events";
import { writeAuditEvent } from "@/lib/audit/write";
import type { SenderContext } from "@/lib/auth/context";
import { env } from "@/lib/env";
import { sendingPauseOf } from "@/lib/incidents/switches";
import { markMailboxRecovered } from "@/lib/oauth/recovery";
import {
  checkActorLimit,
  checkMailboxLimits,
  checkPermission,
  checkSwitches,
  checkToken,
  decode,
  lookupMailbox,
  revokedKeyRefusal,
  type SendBody,
  senderOf,
  stoppedMeanwhile,
  validate,
} from "./checks";
import {
  applyToMailbox,
  deliver,
  outcomeOf,
  probeConnection,
  recordDelivery,
  recordUse,
} from "./delivery";
import {
  findEarlierRequest,
  hashSendRequest,
  holdInFlight,
  type IdempotencyScope,
  replay,
} from "./idempotency";
import { refusalToSend, unusableMailbox } from "./mailbox-state";
import { mailboxSelectorOf } from "./message";
import { toNodemailerFields } from "./nodemailer-fields";
import { type ConnectionTestOutcome, isRefusal, isSmtpFailure, type SendOutcome } from "./outcomes";
import { queueMessage } from "./queued";

// THE send chokepoint: every message — API sends, dashboard test messages — and every
// connection test passes here, judged in this order: incident switches → permission → rate
// limits → JSON body → mailbox (organisation, key still unrevoked, key's scope, status) →
// validation and HTML sanitising → mailbox rate limits → access token → message row →
// SMTP → row update and audit event. The cheap refusals come before validation because
// sanitising is the one step whose cost the caller controls. The mailbox (read with the
// switches, in one statement), the permission, the caller's rate limit and an earlier request
// with the Idempotency-Key are asked together at the start; what they say is still judged in
// this order.
// Nothing else in the code base creates a transport or calls sendMail (lib/mail/delivery.ts
// does, for this module and for send-queued.ts, which runs these checks again for each queued
// message at its attempt). The checks themselves live in checks.ts.
//
// With `respondAsync` (an API request with `Prefer: respond-async`), every check up to and
// including validation runs as for a synchronous send, then the message is queued
// (lib/mail/queued.ts) instead of sent: the mailbox's limits and its token are judged at the
// attempt, where a limit holds the message instead of refusing it.

export type { SendBody } from "./checks";

export type SendMessageInput = {
  ctx: SenderContext;
  body: SendBody;
  idempotencyKey?: string;
  purpose: "api" | "dashboard_test" | "notification";
  /** Epoch ms: transient replies are retried and a free connection awaited until then. */
  deadlineAt?: number;
  /** Queue the message and answer at once (API only, `Prefer: respond-async`). */
  respondAsync?: boolean;
};

export type ConnectionTestInput = {
  ctx: SenderContext;
  mailboxId: string;
  /** An administrator's "Retry now": a passing test reconnects a mailbox that needed them. */
  isAdminRetry?: boolean;
};

/* ---------------------------------------------------------------------------------------- */
/* Entry points                                                                              */

/** Sends one message, or says in one outcome why not. Never throws for a caller's mistake. */
export async function sendMessage(input: SendMessageInput): Promise<SendOutcome> {
  const { ctx } = input;
  const db = await getDb();
  // JSON decoding only (linear, and the route caps the bytes), so that the steps below can be
  // issued together; their answers are still judged in the chokepoint's order. The caller's
  // own limit counts every attempt, refused or not, as it always did for denied calls.
  const body = decode(input.body);
  const selector = "kind" in body ? null : mailboxSelectorOf(body.value);
  const sender = senderOf(ctx);
  const scope: IdempotencyScope | null =
    input.idempotencyKey === undefined
      ? null
      : { orgId: ctx.orgId, sender, idempotencyKey: input.idempotencyKey };
  const [found, refused, limited, first] = await Promise.all([
    selector === null ? null : lookupMailbox(db, ctx, selector),
    checkPermission(db, ctx),
    checkActorLimit(ctx),
    scope === null ? null : findEarlierRequest(db, scope),
  ]);
  // A key revoked since the route verified it is told 401 before anything else; the lookup
  // said so in its statement, and without a lookup the key is read again (a cold path).
  const revoked =
    found === null ? await revokedKeyRefusal(db, ctx) : isRefusal(found) ? found : null;
  if (revoked?.kind === "unauthorized") return revoked;
  // The lookup read the switches with the mailbox; without a mailbox they are read now.
  const known = found === null || isRefusal(found) ? undefined : sendingPauseOf(found.sendingPause);
  const paused = await checkSwitches(db, ctx, known);
  if (paused) return paused;
  if (refused) return refused;
  if (limited) return limited;

  if ("kind" in body) return body;
  if (found === null) {
    // Nothing to look up: the full list of problems answers, the mailbox among them (the
    // schema refuses it, so no HTML is sanitised on the way).
    const invalid = validate(body.value);
    if ("kind" in invalid) return invalid;
    return {
      kind: "invalid",
      status: 400,
      problems: [{ field: "mailbox", message: "is required" }],
    };
  }
  const mailbox = found;
  if (isRefusal(mailbox)) return mailbox;
  // A replay answers with the first result whatever state the mailbox is in now.
  if (first === null) {
    const unusable = refusalToSend(mailbox);
    if (unusable) return unusable;
  }

  const request = validate(body.value);
  if ("kind" in request) return request;
  const requestHash = hashSendRequest(request);
  if (scope !== null && first !== null) return replay(db, scope, requestHash, first);

  if (input.respondAsync) {
    const queued = await queueMessage(db, {
      ctx,
      mailbox,
      sender,
      request,
      requestHash,
      idempotencyKey: scope?.idempotencyKey ?? null,
    });
    if (queued) return { kind: "queued", id: queued.id, isReplay: false };
    return replay(db, scope ?? { orgId: ctx.orgId, sender, idempotencyKey: "" }, requestHash, null);
  }

  const fields = toNodemailerFields(request);
  const recipientCount = request.to.length + request.cc.length + request.bcc.length;
  const overLimit = await checkMailboxLimits(mailbox, recipientCount);
  if (overLimit) return overLimit;
  const token = await checkToken(mailbox);
  if (isRefusal(token)) return token;

  const claimed = await claimMessage({
    db,
    orgId: ctx.orgId,
    mailboxId: mailbox.id,
    sender,
    recipients: { to: request.to, cc: request.cc, bcc: request.bcc },
    subject: request.subject,
    idempotencyKey: scope?.idempotencyKey ?? null,
    requestHash,
    leaseSeconds: env().QUEUE_SEND_LEASE_SECONDS,
  });
  // Lost the race for this Idempotency-Key to a request that arrived at the same time.
  if (!claimed)
    return replay(db, scope ?? { orgId: ctx.orgId, sender, idempotencyKey: "" }, requestHash, null);

  const release = holdInFlight(scope);
  try {
    const delivery = await deliver(mailbox, token.expiresAt, fields, input.deadlineAt, () =>
      stoppedMeanwhile(db, ctx.orgId, mailbox.id),
    );
    if (!delivery.ok && isSmtpFailure(delivery.failure)) {
      await applyToMailbox(mailbox, delivery.failure);
    }
    await recordDelivery(db, {
      ctx,
      purpose: input.purpose,
      mailbox,
      messageId: claimed.id,
      claimId: claimed.claimId,
      recipientCount,
      delivery,
    });
    if (delivery.ok) recordUse(mailbox.id);
    return outcomeOf(claimed.id, delivery);
  } catch (error) {
    // An unexpected failure still settles the row, so a replay does not wait for ever.
    await finishMessage({
      db,
      orgId: ctx.orgId,
      messageId: claimed.id,
      claimId: claimed.claimId,
      status: "failed",
      smtpResponse: null,
      providerMessageId: null,
      errorCode: "internal_error",
    }).catch(() => {});
    throw error;
  } finally {
    release();
  }
}

/**
 * "Test connection": TLS, AUTH XOAUTH2 and QUIT on a fresh, unpooled connection — no DATA.
 * Same switches, permission, mailbox and token checks as a send; audited either way.
 */
export async function testConnection({
  ctx,
  mailboxId,
  isAdminRetry = false,
}: ConnectionTestInput): Promise<ConnectionTestOutcome> {
  const db = await getDb();
  const paused = await checkSwitches(db, ctx);
  if (paused) return paused;
  const refused = await checkPermission(db, ctx);
  if (refused) return refused;
  const limited = await checkActorLimit(ctx);
  if (limited) return limited;

  const row = await getMailboxForOrg({ db, orgId: ctx.orgId, mailboxId });
  if (!row) return { kind: "not_found", cause: "No such mailbox in this organisation." };
  const mailbox = await lookupMailbox(db, ctx, row.id);
  if (isRefusal(mailbox)) return mailbox;
  // "Retry now" tests a mailbox waiting for an administrator; every other state is refused
  // as for any test.
  const retrying = isAdminRetry && mailbox.status === "admin_action_required";
  const unusable = retrying ? null : unusableMailbox(mailbox);
  if (unusable) return unusable;
  if (isAdminRetry && !retrying) {
    return {
      kind: "conflict",
      mailboxStatus: mailbox.status,
      cause: "Only a mailbox that needs an administrator can be retried; this one is connected.",
    };
  }
  const result = await probeConnection(mailbox, { isAdminRetry: retrying });
  if (retrying && result.kind === "connected" && ctx.actor.type === "user") {
    await markMailboxRecovered(mailbox.id, { actor: ctx.actor, request: ctx.request });
  }

  await writeAuditEvent(db, {
    orgId: ctx.orgId,
    actor: ctx.actor,
    action: "mailbox.connection_tested",
    target: { type: "mailbox", id: mailbox.id },
    outcome: result.kind === "connected" ? "success" : "failure",
    request: ctx.request,
    metadata: {
      provider: mailbox.provider,
      result: result.kind,
      ...(result.kind === "provider_failed"
        ? { code: result.code, smtpResponse: withoutAddresses(result.smtpResponse) }
        : {}),
    },
  });
  return result;
}
