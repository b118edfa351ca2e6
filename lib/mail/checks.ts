import "server-only";
import type { Database } from "@/db";
import { getApiKeyForOrg } from "@/db/queries/api-keys";
import { findMailboxByIdOrAddress, getMailboxForOrg } from "@/db/queries/mailboxes";
import type { MessageSender } from "@/db/queries/messages";
import { auditCallerRefusal } from "@/lib/audit/refusals";
import { writeAuditEvent } from "@/lib/audit/write";
import type { SenderContext } from "@/lib/auth/context";
import { hasPermission } from "@/lib/auth/roles";
import { isSendingPaused, type SendingPause } from "@/lib/incidents/switches";
import { assertUsable } from "@/lib/oauth/tokens";
import { type LimitName, type RateLimitResult, sendDayCost, sendLimitNames } from "@/lib/ratelimit";
import { rateLimits } from "@/lib/ratelimit/runtime";
import { isKeyUsable } from "./api-key-state";
import { ensureToken, type Mailbox, tokenFailure } from "./delivery";
import { decodeSendRequestText, type SendRequest, validateSendRequest } from "./message";
import { isSmtpFailure, type RefusalOutcome, type SendOutcome } from "./outcomes";

// The send chokepoint's checks (lib/mail/send.ts runs them, in its order, for a synchronous
// send, an enqueue and again for each queued message at its attempt). Each answers null when
// it passes, or the refusal the caller gets.

/** The raw HTTP body (the route), or an already-decoded value (a dashboard form). */
export type SendBody =
  | { type: "http"; text: string; contentType: string | null }
  | { type: "value"; value: unknown };

export type Invalid = Extract<SendOutcome, { kind: "invalid" }>;

// During an incident, who still tried to send is worth knowing: each refusal is audited.
export async function checkSwitches(
  db: Database,
  ctx: SenderContext,
  /** The pause as the mailbox lookup read it, when it found the mailbox; else read here. */
  known?: SendingPause,
): Promise<RefusalOutcome | null> {
  const pause = known ?? (await isSendingPaused({ db, orgId: ctx.orgId }));
  if (!pause.isPaused) return null;
  // An API key can retry at will during the pause: its refusals are sampled.
  await (ctx.actor.type === "api_key" ? auditCallerRefusal : writeAuditEvent)(db, {
    orgId: ctx.orgId,
    actor: ctx.actor,
    action: "message.refused",
    outcome: "denied",
    request: ctx.request,
    metadata: { reason: "sending_paused", scope: pause.scope },
  });
  return pauseRefusal(pause);
}

function pauseRefusal(pause: SendingPause): RefusalOutcome | null {
  if (!pause.isPaused) return null;
  const who = pause.scope === "global" ? "for every organisation" : "for this organisation";
  return {
    kind: "paused",
    scope: pause.scope,
    cause: `Sending is paused ${who} by an incident switch: ${pause.reason}`,
  };
}

/**
 * Before a send under way tries SMTP again (a transient refusal, seconds of back-off): a pause
 * turned on meanwhile, or the mailbox paused or disconnected, stops it there. Its own message
 * row then records why; the pause was audited when it was turned on.
 */
export async function stoppedMeanwhile(
  db: Database,
  orgId: string,
  mailboxId: string,
): Promise<RefusalOutcome | null> {
  const [pause, row] = await Promise.all([
    isSendingPaused({ db, orgId }),
    getMailboxForOrg({ db, orgId, mailboxId }),
  ]);
  const paused = pauseRefusal(pause);
  if (paused) return paused;
  if (!row) return { kind: "not_found", cause: "No such mailbox in this organisation." };
  try {
    assertUsable(row);
    return null;
  } catch (error) {
    return tokenRefusal(error);
  }
}

/**
 * A key's revocation is re-checked with the mailbox lookup (one statement, see lookupMailbox).
 * Mailwarden's own notifications (the system actor) need no role: only server code builds that
 * context, and every other check below still applies to it.
 */
export async function checkPermission(
  db: Database,
  ctx: SenderContext,
): Promise<RefusalOutcome | null> {
  if (ctx.actor.type === "api_key" || ctx.actor.type === "system") return null;
  if (ctx.role !== null && hasPermission(ctx.role, "send")) return null;
  await writeAuditEvent(db, {
    orgId: ctx.orgId,
    actor: ctx.actor,
    action: "access.denied",
    target: { type: "permission", id: "send" },
    outcome: "denied",
    request: ctx.request,
    metadata: { role: ctx.role },
  });
  return { kind: "forbidden", cause: "Your role does not allow sending messages." };
}

/** The sender as message rows and limits name it (the system sends for one organisation). */
export function senderOf(ctx: SenderContext): MessageSender {
  return ctx.actor.type === "system"
    ? { type: "system", id: ctx.orgId }
    : { type: ctx.actor.type, id: ctx.actor.id };
}

// The system's own volume is bounded by the digest window and the health interval; the
// mailbox's limits still apply to it.
export async function checkActorLimit(ctx: SenderContext): Promise<RefusalOutcome | null> {
  if (ctx.actor.type === "system") return null;
  const name: LimitName = ctx.actor.type === "api_key" ? "apiKey" : "testSend";
  const sender = senderOf(ctx);
  return limitRefusal(name, await rateLimits().get(name).limit(`${sender.type}:${sender.id}`));
}

/** What a limit's answer means for the caller: null when it passed. */
export function limitRefusal(
  name: LimitName,
  result: RateLimitResult,
  unavailableCause = `Sending is temporarily unavailable: the rate-limit store does not answer. Nothing was sent; try again in ${result.retryAfterSeconds} seconds.`,
): Extract<RefusalOutcome, { kind: "rate_limited" | "unavailable" }> | null {
  if (result.success) return null;
  if (result.unavailable) {
    return {
      kind: "unavailable",
      retryAfterSeconds: result.retryAfterSeconds,
      cause: unavailableCause,
    };
  }
  return { kind: "rate_limited", limit: name, retryAfterSeconds: result.retryAfterSeconds };
}

/** The body as a value: JSON decoding only, nothing validated yet. */
export function decode(body: SendBody): { value: unknown } | Invalid {
  if (body.type === "value") return { value: body.value };
  const decoded = decodeSendRequestText(body.text, body.contentType);
  return decoded.ok
    ? { value: decoded.body }
    : { kind: "invalid", status: decoded.status, problems: decoded.problems };
}

/** Full validation, HTML sanitising included: the expensive step. */
export function validate(value: unknown): SendRequest | Invalid {
  const parsed = validateSendRequest(value);
  return parsed.ok
    ? parsed.value
    : { kind: "invalid", status: parsed.status, problems: parsed.problems };
}

/**
 * The mailbox in the organisation, if the caller may use it; its state is not judged here.
 * For an API key the same statement says whether the key is still unrevoked and which
 * mailboxes it may use now, so a key revoked or restricted after the route verified it (or
 * remembered it: lib/mail/api-keys.ts) is refused here without a second read of the key.
 */
export async function lookupMailbox(
  db: Database,
  ctx: SenderContext,
  selector: string,
): Promise<Mailbox | RefusalOutcome> {
  const apiKeyId = ctx.actor.type === "api_key" ? ctx.actor.id : null;
  const mailbox = await findMailboxByIdOrAddress({
    db,
    orgId: ctx.orgId,
    mailbox: selector,
    apiKeyId,
  });
  if (apiKeyId !== null) {
    const revoked = mailbox ? mailbox.keyActive !== true : await keyRevocation(db, ctx);
    if (revoked) return denied(db, ctx, "key_revoked", null, { kind: "unauthorized" });
  }
  if (!mailbox) {
    return denied(db, ctx, "mailbox_not_found", null, {
      kind: "not_found",
      cause: "No such mailbox in this organisation.",
    });
  }
  const allowed = apiKeyId === null ? ctx.allowedMailboxIds : mailbox.keyAllowedMailboxIds;
  if (allowed !== null && !allowed.includes(mailbox.id)) {
    return denied(db, ctx, "mailbox_not_allowed_for_key", mailbox.id, {
      kind: "forbidden",
      cause: "This API key is not allowed to send from that mailbox.",
    });
  }
  return mailbox;
}

/** Whether the caller's API key has been revoked (or has expired) since it was verified. */
async function keyRevocation(db: Database, ctx: SenderContext): Promise<boolean> {
  if (ctx.actor.type !== "api_key") return false;
  return !isKeyUsable(await getApiKeyForOrg({ db, orgId: ctx.orgId, keyId: ctx.actor.id }));
}

/**
 * For a request that is answered without a mailbox lookup (no mailbox named, a body that is
 * not JSON): the key's fresh state, so that a revoked key is told 401 and nothing else.
 */
export async function revokedKeyRefusal(
  db: Database,
  ctx: SenderContext,
): Promise<RefusalOutcome | null> {
  if (!(await keyRevocation(db, ctx))) return null;
  return denied(db, ctx, "key_revoked", null, { kind: "unauthorized" });
}

/** A key's refused mailbox lookup is audited (sampled: a key can probe at will). */
async function denied(
  db: Database,
  ctx: SenderContext,
  reason: string,
  mailboxId: string | null,
  refusal: RefusalOutcome,
): Promise<RefusalOutcome> {
  if (ctx.actor.type === "api_key") {
    await auditCallerRefusal(db, {
      orgId: ctx.orgId,
      actor: ctx.actor,
      action: "access.denied",
      target: mailboxId ? { type: "mailbox", id: mailboxId } : null,
      outcome: "denied",
      request: ctx.request,
      metadata: { reason },
    });
  }
  return refusal;
}

export async function checkMailboxLimits(
  mailbox: Mailbox,
  recipientCount: number,
): Promise<RefusalOutcome | null> {
  const names = sendLimitNames(mailbox.provider);
  const identifier = `mailbox:${mailbox.id}`;
  // The synchronous route and the queue both charge here, in the provider's unit, both limits
  // or neither: a send the minute refuses takes nothing from the day, and the other way round.
  const refused = await rateLimits().limitAll([
    { name: names.minute, identifier },
    { name: names.day, identifier, cost: sendDayCost(mailbox.provider, recipientCount) },
  ]);
  return refused && limitRefusal(refused.name, refused.result);
}

/** The token check before any row is written: a dead grant is a refusal, not a message. */
export async function checkToken(
  mailbox: Mailbox,
): Promise<{ expiresAt: Date | null } | RefusalOutcome> {
  try {
    return { expiresAt: await ensureToken(mailbox) };
  } catch (error) {
    return tokenRefusal(error);
  }
}

/** The token layer's refusal as a send answers it: a grant needing reconnection is a conflict. */
function tokenRefusal(error: unknown): RefusalOutcome {
  const refused = tokenFailure(error);
  if (!refused) throw error;
  return isSmtpFailure(refused)
    ? { kind: "conflict", mailboxStatus: "needs_reconnect", cause: refused.cause }
    : refused;
}
