import "server-only";
import { createHash } from "node:crypto";
import { type Database, getDb } from "@/db";
import { getApiKeyForOrg } from "@/db/queries/api-keys";
import { findMailboxByIdOrAddress, getMailboxForOrg } from "@/db/queries/mailboxes";
import {
  claimMessage,
  findMessageByIdempotencyKey,
  finishMessage,
  type MessageResult,
  type MessageSender,
} from "@/db/queries/messages";
import type { MailboxStatus, Role } from "@/db/schema";
import type { Actor } from "@/lib/audit/events";
import { writeAuditEvent } from "@/lib/audit/write";
import { hasPermission } from "@/lib/auth/roles";
import { isSendingPaused } from "@/lib/incidents/switches";
import {
  MailboxNeedsReconnectError,
  MailboxNotFoundError,
  MailboxUnavailableError,
  ProviderNotConfiguredError,
  TokenRefreshTransientError,
} from "@/lib/oauth/errors";
import { getMailProvider } from "@/lib/oauth/providers";
import {
  getAccessToken,
  markMailboxUnusable,
  REFRESH_AHEAD_MS,
  recordMailboxUse,
} from "@/lib/oauth/tokens";
import { type LimitName, type SendProvider, sendLimitNames } from "@/lib/ratelimit";
import { rateLimits } from "@/lib/ratelimit/runtime";
import {
  decodeSendRequestText,
  type FieldProblem,
  mailboxSelectorOf,
  type SendRequest,
  toNodemailerFields,
  validateSendRequest,
} from "./message";
import {
  ADMIN_ACTION_INSTRUCTIONS,
  classifySmtpError,
  enhancedStatus,
  type SmtpFailure,
  type SmtpFailureKind,
} from "./smtp-replies";
import {
  closeMailboxTransport,
  createProbeTransport,
  getMailboxTransport,
  lastTokenFor,
  type MailboxTransportTarget,
} from "./transport";

// THE send chokepoint: every message — API sends, dashboard test messages — and every
// connection test passes here, in this order: incident switches → permission → rate limits →
// JSON body → mailbox (organisation, key's scope, status) → validation and HTML sanitising →
// access token → SMTP → message row and audit. The cheap refusals come before validation
// because sanitising is the one step whose cost the caller controls.
// Nothing else in the code base creates a transport or calls sendMail.

export type SendActor =
  | { type: "user"; userId: string; role: Role; label?: string }
  | { type: "api_key"; keyId: string; label?: string };

/** The raw HTTP body (the route), or an already-decoded value (a dashboard form). */
export type SendBody =
  | { type: "http"; text: string; contentType: string | null }
  | { type: "value"; value: unknown };

export type RequestMeta = { ip: string | null; userAgent: string | null };

export type SendMessageInput = {
  actor: SendActor;
  orgId: string;
  body: SendBody;
  idempotencyKey?: string;
  purpose: "api" | "dashboard_test";
  request: RequestMeta;
};

export type PauseScope = "global" | "organization" | "mailbox";

/** Refusals shared by sends and connection tests. */
export type RefusalOutcome =
  | { kind: "unauthorized" }
  | { kind: "forbidden"; cause: string }
  | { kind: "not_found"; cause: string }
  | { kind: "conflict"; cause: string; mailboxStatus: MailboxStatus | null }
  | { kind: "paused"; scope: PauseScope; cause: string }
  | { kind: "rate_limited"; limit: LimitName; retryAfterSeconds: number }
  | {
      kind: "provider_failed";
      /** The message row, when one was written. */
      id: string | null;
      failure: SmtpFailureKind | "token";
      code: string;
      smtpResponse: string | null;
      cause: string;
      retryAfterSeconds: number | null;
    };

export type SendOutcome =
  | { kind: "sent"; id: string; messageId: string | null; smtpResponse: string | null }
  | {
      kind: "replayed";
      id: string;
      status: "sent" | "failed";
      messageId: string | null;
      smtpResponse: string | null;
      errorCode: string | null;
    }
  | { kind: "idempotency_mismatch" }
  | { kind: "invalid"; status: 400 | 413 | 415; problems: FieldProblem[] }
  | RefusalOutcome;

export type ConnectionTestOutcome =
  | { kind: "connected"; address: string; cause: string }
  | Exclude<RefusalOutcome, { kind: "unauthorized" }>
  | { kind: "unauthorized" };

export type ConnectionTestInput = {
  orgId: string;
  mailboxId: string;
  actor: SendActor;
  request: RequestMeta;
};

// Transient SMTP failures are tried again inside the send, then reported.
const RETRY_DELAYS_MS = [250, 1_000];
// A request that finds its Idempotency-Key held waits this long for the holder to finish.
const REPLAY_WAIT_MS = 90_000;
const USE_RECORD_EVERY_MS = 60_000;

type Sender = MessageSender & { label: string | null; allowedMailboxIds: string[] | null };

type Mailbox = NonNullable<Awaited<ReturnType<typeof findMailboxByIdOrAddress>>>;

type Holder = { inFlight: Map<string, Promise<void>>; usedAt: Map<string, number> };
const holder = globalThis as typeof globalThis & { __mailwardenSend?: Holder };
holder.__mailwardenSend ??= { inFlight: new Map(), usedAt: new Map() };
const local = holder.__mailwardenSend;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/* ---------------------------------------------------------------------------------------- */
/* The checks, in order                                                                      */

// During an incident, who still tried to send is worth knowing: each refusal is audited.
async function checkSwitches(
  db: Database,
  input: { orgId: string; actor: SendActor; request: RequestMeta },
): Promise<RefusalOutcome | null> {
  const pause = await isSendingPaused({ db, orgId: input.orgId });
  if (!pause.isPaused) return null;
  await writeAuditEvent(db, {
    orgId: input.orgId,
    actor: auditActorOf(input.actor),
    action: "message.refused",
    outcome: "denied",
    request: input.request,
    metadata: { reason: "sending_paused", scope: pause.scope },
  });
  const who = pause.scope === "global" ? "for every organisation" : "for this organisation";
  return {
    kind: "paused",
    scope: pause.scope,
    cause: `Sending is paused ${who} by an incident switch: ${pause.reason}`,
  };
}

async function checkPermission(
  db: Database,
  orgId: string,
  actor: SendActor,
  request: RequestMeta,
): Promise<Sender | RefusalOutcome> {
  if (actor.type === "api_key") {
    const key = await getApiKeyForOrg({ db, orgId, keyId: actor.keyId });
    if (!key || key.revokedAt !== null) return { kind: "unauthorized" };
    return {
      type: "api_key",
      id: key.id,
      label: actor.label ?? key.name,
      allowedMailboxIds: key.allowedMailboxIds,
    };
  }
  if (!hasPermission(actor.role, "send")) {
    await writeAuditEvent(db, {
      orgId,
      actor: auditActorOf(actor),
      action: "access.denied",
      target: { type: "permission", id: "send" },
      outcome: "denied",
      request: request,
      metadata: { role: actor.role },
    });
    return { kind: "forbidden", cause: "Your role does not allow sending messages." };
  }
  return { type: "user", id: actor.userId, label: actor.label ?? null, allowedMailboxIds: null };
}

async function checkActorLimit(sender: Sender): Promise<RefusalOutcome | null> {
  const name: LimitName = sender.type === "api_key" ? "apiKey" : "testSend";
  const result = await rateLimits().get(name).limit(`${sender.type}:${sender.id}`);
  return result.success
    ? null
    : { kind: "rate_limited", limit: name, retryAfterSeconds: result.retryAfterSeconds };
}

type Invalid = Extract<SendOutcome, { kind: "invalid" }>;

/** The body as a value: JSON decoding only, nothing validated yet. */
function decode(body: SendBody): { value: unknown } | Invalid {
  if (body.type === "value") return { value: body.value };
  const decoded = decodeSendRequestText(body.text, body.contentType);
  return decoded.ok
    ? { value: decoded.body }
    : { kind: "invalid", status: decoded.status, problems: decoded.problems };
}

/** Full validation, HTML sanitising included: the expensive step. */
function validate(value: unknown): SendRequest | Invalid {
  const parsed = validateSendRequest(value);
  return parsed.ok
    ? parsed.value
    : { kind: "invalid", status: parsed.status, problems: parsed.problems };
}

/** SHA-256 of the validated request in a fixed field order: same message, same hash. */
export function hashSendRequest(value: SendRequest): string {
  const canonical = [
    value.mailbox,
    value.to,
    value.cc,
    value.bcc,
    value.replyTo ?? null,
    value.subject,
    value.text ?? null,
    value.html ?? null,
  ];
  return createHash("sha256").update(JSON.stringify(canonical)).digest("hex");
}

function mailboxRefusal(mailbox: Mailbox): RefusalOutcome | null {
  switch (mailbox.status) {
    case "connected":
      return null;
    case "paused":
      return {
        kind: "paused",
        scope: "mailbox",
        cause: "This mailbox is paused by an administrator; nothing is sent from it until resumed.",
      };
    case "needs_reconnect":
      return {
        kind: "conflict",
        mailboxStatus: mailbox.status,
        cause:
          mailbox.lastErrorCause ??
          "The mailbox's grant no longer works. An owner or admin must reconnect the mailbox.",
      };
    case "admin_action_required":
      return {
        kind: "conflict",
        mailboxStatus: mailbox.status,
        cause: mailbox.lastErrorCause ?? ADMIN_ACTION_INSTRUCTIONS,
      };
    case "revoked":
      return {
        kind: "conflict",
        mailboxStatus: mailbox.status,
        cause: "This mailbox was disconnected. Connect it again to send from it.",
      };
  }
}

/** The mailbox in the organisation, if the sender may use it; its state is not judged here. */
async function lookupMailbox(
  db: Database,
  orgId: string,
  sender: Sender,
  selector: string,
): Promise<Mailbox | RefusalOutcome> {
  const mailbox = await findMailboxByIdOrAddress({ db, orgId, mailbox: selector });
  if (!mailbox) {
    return { kind: "not_found", cause: "No such mailbox in this organisation." };
  }
  if (sender.allowedMailboxIds !== null && !sender.allowedMailboxIds.includes(mailbox.id)) {
    return { kind: "forbidden", cause: "This API key is not allowed to send from that mailbox." };
  }
  return mailbox;
}

/** Why nothing can be sent from this mailbox now, or null when it can. */
function unusableMailbox(mailbox: Mailbox): RefusalOutcome | null {
  const refusal = mailboxRefusal(mailbox);
  if (refusal) return refusal;
  if (!getMailProvider(mailbox.provider)) {
    return {
      kind: "conflict",
      mailboxStatus: mailbox.status,
      cause: `The mail provider "${mailbox.provider}" is not configured on this deployment.`,
    };
  }
  return null;
}

async function findMailbox(
  db: Database,
  orgId: string,
  sender: Sender,
  selector: string,
): Promise<Mailbox | RefusalOutcome> {
  const mailbox = await lookupMailbox(db, orgId, sender, selector);
  if (isRefusal(mailbox)) return mailbox;
  return unusableMailbox(mailbox) ?? mailbox;
}

async function checkMailboxLimits(
  mailbox: Mailbox,
  recipientCount: number,
): Promise<RefusalOutcome | null> {
  const names = sendLimitNames(mailbox.provider as SendProvider);
  const id = `mailbox:${mailbox.id}`;
  const minute = await rateLimits().get(names.minute).limit(id);
  if (!minute.success) {
    return {
      kind: "rate_limited",
      limit: names.minute,
      retryAfterSeconds: minute.retryAfterSeconds,
    };
  }
  // The day limit counts recipients (Microsoft: 10,000 recipients a day per mailbox).
  const day = await rateLimits().get(names.day).limit(id, Math.max(1, recipientCount));
  if (!day.success) {
    return { kind: "rate_limited", limit: names.day, retryAfterSeconds: day.retryAfterSeconds };
  }
  return null;
}

function isRefusal(value: object): value is RefusalOutcome {
  return "kind" in value;
}

const SMTP_FAILURE_KINDS: ReadonlySet<string> = new Set<SmtpFailureKind>([
  "reconnect",
  "admin_action",
  "transient",
  "tls",
  "rejected",
]);

function isSmtpFailure(value: SmtpFailure | RefusalOutcome): value is SmtpFailure {
  return SMTP_FAILURE_KINDS.has(value.kind);
}

/* ---------------------------------------------------------------------------------------- */
/* Idempotency                                                                               */

function flightKey(orgId: string, sender: MessageSender, idempotencyKey: string): string {
  return `${orgId}\u0000${sender.type}\u0000${sender.id}\u0000${idempotencyKey}`;
}

function replayOf(row: MessageResult): SendOutcome {
  return {
    kind: "replayed",
    id: row.id,
    status: row.status === "sent" ? "sent" : "failed",
    messageId: row.providerMessageId,
    smtpResponse: row.smtpResponse,
    errorCode: row.errorCode,
  };
}

/**
 * The key is already taken: the same body gets the first request's result (after waiting for
 * it to finish, possibly in another process), a different body gets a mismatch.
 */
async function replay(
  db: Database,
  orgId: string,
  sender: MessageSender,
  idempotencyKey: string,
  requestHash: string,
  first: MessageResult | null,
): Promise<SendOutcome> {
  const deadline = Date.now() + REPLAY_WAIT_MS;
  let row = first;
  let delay = 20;
  for (;;) {
    row ??= await findMessageByIdempotencyKey({ db, orgId, sender, idempotencyKey });
    if (!row) {
      return {
        kind: "conflict",
        mailboxStatus: null,
        cause: "A request with this Idempotency-Key was just made; retry in a moment.",
      };
    }
    if (row.requestHash !== requestHash) return { kind: "idempotency_mismatch" };
    if (row.status !== "sending") return replayOf(row);
    if (Date.now() > deadline) {
      return {
        kind: "conflict",
        mailboxStatus: null,
        cause: "The first request with this Idempotency-Key is still being sent; retry later.",
      };
    }
    const inProcess = local.inFlight.get(flightKey(orgId, sender, idempotencyKey));
    if (inProcess) await inProcess;
    else {
      await sleep(delay);
      delay = Math.min(delay * 2, 250);
    }
    row = null;
  }
}

/* ---------------------------------------------------------------------------------------- */
/* Token and SMTP                                                                            */

function transportTarget(mailbox: Mailbox, expiresAt: Date | null): MailboxTransportTarget {
  return {
    mailboxId: mailbox.id,
    address: mailbox.address,
    provider: mailbox.provider,
    generation: String(expiresAt?.getTime() ?? 0),
  };
}

/**
 * A token that still has its refresh margin is used by the transport as stored; only a stale
 * one is refreshed here, before any row is written, so a dead grant costs no message row.
 */
async function ensureToken(mailbox: Mailbox): Promise<Date | null> {
  const expiresAt = mailbox.accessTokenExpiresAt;
  if (expiresAt && expiresAt.getTime() - Date.now() > REFRESH_AHEAD_MS + 30_000) return expiresAt;
  const token = await getAccessToken(mailbox.id);
  return token.expiresAt;
}

/** A failure from the token lifecycle (possibly surfacing through nodemailer's AUTH). */
function tokenFailure(error: unknown): SmtpFailure | RefusalOutcome | null {
  if (error instanceof MailboxNeedsReconnectError) {
    const original = (error as { originalCode?: unknown }).originalCode;
    return {
      kind: "reconnect",
      code: typeof original === "string" ? original : "needs_reconnect",
      cause: error.cause,
      smtpResponse: null,
    };
  }
  if (error instanceof MailboxUnavailableError) {
    return error.status === "paused"
      ? { kind: "paused", scope: "mailbox", cause: error.cause }
      : { kind: "conflict", mailboxStatus: error.status, cause: error.cause };
  }
  if (error instanceof MailboxNotFoundError) {
    return { kind: "not_found", cause: "No such mailbox in this organisation." };
  }
  if (error instanceof ProviderNotConfiguredError) {
    return { kind: "conflict", mailboxStatus: null, cause: error.message };
  }
  if (error instanceof TokenRefreshTransientError) {
    return {
      kind: "provider_failed",
      id: null,
      failure: "token",
      code: "token_refresh_unavailable",
      smtpResponse: null,
      cause:
        "The provider's token service is not answering, so no fresh access token could be " +
        "fetched. Nothing was sent; try again later.",
      retryAfterSeconds: Math.max(1, Math.ceil((error.retryAt.getTime() - Date.now()) / 1000)),
    };
  }
  return null;
}

type Delivery =
  | { ok: true; messageId: string | null; smtpResponse: string | null }
  | { ok: false; failure: SmtpFailure | RefusalOutcome };

async function deliver(
  mailbox: Mailbox,
  expiresAt: Date | null,
  fields: ReturnType<typeof toNodemailerFields>,
): Promise<Delivery> {
  let target = transportTarget(mailbox, expiresAt);
  let hasForcedRefresh = false;
  for (let attempt = 0; ; attempt++) {
    try {
      const transporter = await getMailboxTransport(target);
      const info = await transporter.sendMail({
        from: { name: "", address: mailbox.address },
        ...fields,
      });
      return {
        ok: true,
        messageId: info.messageId ?? null,
        smtpResponse: typeof info.response === "string" ? info.response : null,
      };
    } catch (error) {
      const fromToken = tokenFailure(error);
      if (fromToken) return { ok: false, failure: fromToken };
      const failure = classifySmtpError(error);
      if (failure.kind === "transient" && attempt < RETRY_DELAYS_MS.length) {
        await sleep(RETRY_DELAYS_MS[attempt] ?? 1_000);
        continue;
      }
      // 535 5.7.3 can also mean a stale token: only after a fresh one is it the admin's problem.
      if (
        failure.kind === "admin_action" &&
        enhancedStatus(failure.smtpResponse) === "5.7.3" &&
        !hasForcedRefresh
      ) {
        hasForcedRefresh = true;
        const rejectedToken = lastTokenFor(mailbox.id);
        try {
          const token = await getAccessToken(mailbox.id, {
            forceRefresh: true,
            ...(rejectedToken ? { rejectedToken } : {}),
          });
          closeMailboxTransport(mailbox.id);
          target = transportTarget(mailbox, token.expiresAt);
          continue;
        } catch (refreshError) {
          const refused = tokenFailure(refreshError);
          if (refused) return { ok: false, failure: refused };
          throw refreshError;
        }
      }
      return { ok: false, failure };
    }
  }
}

/** After the provider refused the grant itself (second 535 after a fresh token). */
/** Moves the mailbox out of `connected` when the reply says a person must act. */
async function applyToMailbox(mailbox: Mailbox, failure: SmtpFailure) {
  if (failure.kind !== "reconnect" && failure.kind !== "admin_action") return;
  await markMailboxUnusable(mailbox.id, {
    status: failure.kind === "reconnect" ? "needs_reconnect" : "admin_action_required",
    code: failure.code,
    cause: failure.cause.replace("<address>", mailbox.address),
    smtpResponse: failure.smtpResponse,
  });
  closeMailboxTransport(mailbox.id);
}

function recordUse(mailboxId: string): void {
  const now = Date.now();
  if (now - (local.usedAt.get(mailboxId) ?? 0) < USE_RECORD_EVERY_MS) return;
  local.usedAt.set(mailboxId, now);
  // Bookkeeping only (Google ends grants unused for 6 months); never fails a sent message.
  recordMailboxUse(mailboxId).catch(() => local.usedAt.delete(mailboxId));
}

function auditActorOf(actor: SendActor | Sender): Actor {
  if ("keyId" in actor) return { type: "api_key", id: actor.keyId, label: actor.label ?? null };
  if ("userId" in actor) return { type: "user", id: actor.userId, label: actor.label ?? null };
  return { type: actor.type, id: actor.id, label: actor.label };
}

async function finish(
  db: Database,
  input: SendMessageInput,
  sender: Sender,
  mailbox: Mailbox,
  messageId: string,
  recipientCount: number,
  delivery: Delivery,
): Promise<void> {
  const failure = delivery.ok ? null : delivery.failure;
  const smtpFailure = failure && isSmtpFailure(failure) ? failure : null;
  const failureCode = failure === null ? null : "code" in failure ? failure.code : failure.kind;
  await db.transaction(async (tx) => {
    await finishMessage({
      db: tx,
      orgId: input.orgId,
      messageId,
      status: delivery.ok ? "sent" : "failed",
      smtpResponse: delivery.ok ? delivery.smtpResponse : (smtpFailure?.smtpResponse ?? null),
      providerMessageId: delivery.ok ? delivery.messageId : null,
      errorCode: failureCode,
    });
    await writeAuditEvent(tx, {
      orgId: input.orgId,
      actor: auditActorOf(sender),
      action: delivery.ok ? "message.sent" : "message.failed",
      target: { type: "message", id: messageId },
      outcome: delivery.ok ? "success" : "failure",
      request: input.request,
      metadata: {
        mailboxId: mailbox.id,
        provider: mailbox.provider,
        purpose: input.purpose,
        recipientCount,
        smtpResponse: delivery.ok ? delivery.smtpResponse : (smtpFailure?.smtpResponse ?? null),
        ...(delivery.ok ? {} : { failure: failureCode }),
      },
    });
  });
}

function outcomeOf(messageId: string, delivery: Delivery): SendOutcome {
  if (delivery.ok) {
    return {
      kind: "sent",
      id: messageId,
      messageId: delivery.messageId,
      smtpResponse: delivery.smtpResponse,
    };
  }
  const failure = delivery.failure;
  if (!isSmtpFailure(failure)) {
    return failure.kind === "provider_failed" ? { ...failure, id: messageId } : failure;
  }
  return {
    kind: "provider_failed",
    id: messageId,
    failure: failure.kind,
    code: failure.code,
    smtpResponse: failure.smtpResponse,
    cause: failure.cause,
    retryAfterSeconds: failure.kind === "transient" ? 60 : null,
  };
}

/* ---------------------------------------------------------------------------------------- */
/* Entry points                                                                              */

/** Sends one message, or says in one outcome why not. Never throws for a caller's mistake. */
export async function sendMessage(input: SendMessageInput): Promise<SendOutcome> {
  const db = await getDb();
  // Two independent reads, issued together; their answers are still judged in order.
  const [paused, sender] = await Promise.all([
    checkSwitches(db, input),
    checkPermission(db, input.orgId, input.actor, input.request),
  ]);
  if (paused) return paused;
  if (isRefusal(sender)) return sender;
  const limited = await checkActorLimit(sender);
  if (limited) return limited;

  const body = decode(input.body);
  if ("kind" in body) return body;
  const selector = mailboxSelectorOf(body.value);
  if (selector === null) {
    // Nothing to look up: the full list of problems answers, the mailbox among them (the
    // schema refuses it, so no HTML is sanitised on the way).
    const refused = validate(body.value);
    if ("kind" in refused) return refused;
    return {
      kind: "invalid",
      status: 400,
      problems: [{ field: "mailbox", message: "is required" }],
    };
  }
  const mailbox = await lookupMailbox(db, input.orgId, sender, selector);
  if (isRefusal(mailbox)) return mailbox;

  const senderRef: MessageSender = { type: sender.type, id: sender.id };
  const idempotencyKey = input.idempotencyKey ?? null;
  const first =
    idempotencyKey === null
      ? null
      : await findMessageByIdempotencyKey({
          db,
          orgId: input.orgId,
          sender: senderRef,
          idempotencyKey,
        });
  // A replay answers with the first result whatever state the mailbox is in now.
  if (first === null) {
    const unusable = unusableMailbox(mailbox);
    if (unusable) return unusable;
  }

  const request = validate(body.value);
  if ("kind" in request) return request;
  const requestHash = hashSendRequest(request);
  if (first !== null) {
    return replay(db, input.orgId, senderRef, idempotencyKey ?? "", requestHash, first);
  }

  const fields = toNodemailerFields(request);
  const recipientCount = request.to.length + request.cc.length + request.bcc.length;
  const overLimit = await checkMailboxLimits(mailbox, recipientCount);
  if (overLimit) return overLimit;

  let expiresAt: Date | null;
  try {
    expiresAt = await ensureToken(mailbox);
  } catch (error) {
    const refused = tokenFailure(error);
    if (!refused) throw error;
    return isSmtpFailure(refused)
      ? { kind: "conflict", mailboxStatus: "needs_reconnect", cause: refused.cause }
      : refused;
  }

  const claimed = await claimMessage({
    db,
    orgId: input.orgId,
    mailboxId: mailbox.id,
    sender: senderRef,
    recipients: { to: request.to, cc: request.cc, bcc: request.bcc },
    subject: request.subject,
    idempotencyKey,
    requestHash,
  });
  if (!claimed) {
    // Lost the race for this Idempotency-Key to a request that arrived at the same time.
    return replay(db, input.orgId, senderRef, idempotencyKey ?? "", requestHash, null);
  }

  const key = idempotencyKey === null ? null : flightKey(input.orgId, senderRef, idempotencyKey);
  let settle = () => {};
  if (key) local.inFlight.set(key, new Promise<void>((resolve) => (settle = resolve)));
  try {
    const delivery = await deliver(mailbox, expiresAt, fields);
    if (!delivery.ok && isSmtpFailure(delivery.failure)) {
      await applyToMailbox(mailbox, delivery.failure);
    }
    await finish(db, input, sender, mailbox, claimed.id, recipientCount, delivery);
    if (delivery.ok) recordUse(mailbox.id);
    return outcomeOf(claimed.id, delivery);
  } catch (error) {
    // An unexpected failure still settles the row, so a replay does not wait for ever.
    await finishMessage({
      db,
      orgId: input.orgId,
      messageId: claimed.id,
      status: "failed",
      smtpResponse: null,
      providerMessageId: null,
      errorCode: "internal_error",
    }).catch(() => {});
    throw error;
  } finally {
    if (key) local.inFlight.delete(key);
    settle();
  }
}

/**
 * "Test connection": TLS, AUTH XOAUTH2 and QUIT on a fresh, unpooled connection — no DATA.
 * Same switches, permission, mailbox and token checks as a send; audited either way.
 */
export async function testConnection(input: ConnectionTestInput): Promise<ConnectionTestOutcome> {
  const db = await getDb();
  const paused = await checkSwitches(db, input);
  if (paused) return paused;
  const sender = await checkPermission(db, input.orgId, input.actor, input.request);
  if (isRefusal(sender)) return sender;
  const limited = await checkActorLimit(sender);
  if (limited) return limited;

  const row = await getMailboxForOrg({ db, orgId: input.orgId, mailboxId: input.mailboxId });
  if (!row) return { kind: "not_found", cause: "No such mailbox in this organisation." };
  const mailbox = await findMailbox(db, input.orgId, sender, row.id);
  if (isRefusal(mailbox)) return mailbox;

  let result: ConnectionTestOutcome;
  try {
    const expiresAt = await ensureToken(mailbox);
    const probe = await createProbeTransport(transportTarget(mailbox, expiresAt));
    try {
      await probe.verify();
      result = {
        kind: "connected",
        address: mailbox.address,
        cause: "TLS verified and the provider accepted the mailbox's access token (AUTH XOAUTH2).",
      };
    } finally {
      probe.close();
    }
  } catch (error) {
    const refused = tokenFailure(error);
    const failure = refused ?? classifySmtpError(error);
    if (isSmtpFailure(failure)) {
      await applyToMailbox(mailbox, failure);
      result = {
        kind: "provider_failed",
        id: null,
        failure: failure.kind,
        code: failure.code,
        smtpResponse: failure.smtpResponse,
        cause: failure.cause,
        retryAfterSeconds: null,
      };
    } else {
      result = failure;
    }
  }

  await writeAuditEvent(db, {
    orgId: input.orgId,
    actor: auditActorOf(sender),
    action: "mailbox.connection_tested",
    target: { type: "mailbox", id: mailbox.id },
    outcome: result.kind === "connected" ? "success" : "failure",
    request: input.request,
    metadata: {
      provider: mailbox.provider,
      result: result.kind,
      ...(result.kind === "provider_failed"
        ? { code: result.code, smtpResponse: result.smtpResponse }
        : {}),
    },
  });
  return result;
}
