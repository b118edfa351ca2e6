import "server-only";
import { getDb } from "@/db";
import { claimDelivery, getWebhookEndpointSecrets, settleAttempt } from "@/db/queries/webhooks";
import { env } from "@/lib/env";
import { type DnsOptions, resolveWebhookTarget, WebhookTargetError } from "./address";
import { MAX_WAITING_DELIVERIES, turnOffEndpoint } from "./breaker";
import { postWebhook, WEBHOOK_TIMEOUT_MS } from "./http";
import { openWebhookSecret } from "./secrets";
import { webhookHeaders } from "./signing";

// One attempt of one delivery. The claim is one statement (pending and due, or a lapsed lease),
// so a delivery is attempted by one worker at a time; the attempt's answer and the delivery's
// next state are written together. A receiver may still see an event twice (a process that dies
// after the POST and before the write retries it when the lease lapses): the `webhook-id` is
// the same on every attempt, for the receiver to deduplicate, as the spec intends.

// After attempt n (1-based) the next waits RETRY_SCHEDULE_SECONDS[n - 1], the Standard Webhooks
// example schedule, plus up to 10% jitter; none after the last or past the delivery's deadline.
export const RETRY_SCHEDULE_SECONDS = [
  5,
  5 * 60,
  30 * 60,
  2 * 3600,
  5 * 3600,
  10 * 3600,
  14 * 3600,
  20 * 3600,
  24 * 3600,
];
const LEASE_SECONDS = Math.ceil(WEBHOOK_TIMEOUT_MS / 1000) * 3;
// A receiver's Retry-After is honoured up to this.
const MAX_RETRY_AFTER_SECONDS = 24 * 3600;

export type DeliveryResult =
  | { kind: "skipped" }
  /**
   * Not attempted: its endpoint had too many waiting and was turned off; or attempted, but its
   * endpoint was turned off meanwhile, so not retried (./breaker.ts).
   */
  | { kind: "cancelled" }
  | { kind: "delivered"; statusCode: number }
  | { kind: "retry"; at: Date; orgId: string; statusCode: number | null; error: string | null }
  | { kind: "failed"; statusCode: number | null; error: string | null };

function nextAttemptAt(
  attempts: number,
  deadlineAt: Date,
  retryAfterSeconds: number | null,
  now: number,
): Date | null {
  const scheduled = RETRY_SCHEDULE_SECONDS[attempts - 1];
  if (scheduled === undefined) return null;
  const jittered = scheduled * (1 + Math.random() * 0.1);
  const wait = Math.max(jittered, Math.min(retryAfterSeconds ?? 0, MAX_RETRY_AFTER_SECONDS));
  const at = new Date(now + wait * 1000);
  return at > deadlineAt ? null : at;
}

/**
 * Attempts delivery `deliveryId` once, if it is due, and says what happens next; whoever runs it
 * (lib/webhooks/dispatch.ts) schedules the retry. `dns` is for tests (lib/webhooks/address.ts).
 */
export async function deliverWebhook(
  deliveryId: string,
  { dns }: { dns?: DnsOptions } = {},
): Promise<DeliveryResult> {
  const db = await getDb();
  const delivery = await claimDelivery({
    db,
    deliveryId,
    leaseSeconds: LEASE_SECONDS,
    countWaitingUpTo: MAX_WAITING_DELIVERIES + 1,
  });
  if (!delivery) return { kind: "skipped" };
  const started = Date.now();
  const attemptedAt = new Date(started);
  const endpoint = await getWebhookEndpointSecrets({ db, endpointId: delivery.endpointId });
  if (endpoint?.enabled && delivery.waiting > MAX_WAITING_DELIVERIES) {
    // Too far behind to be worth a request: the endpoint goes off, this delivery with the rest.
    await turnOffEndpoint(db, {
      orgId: delivery.orgId,
      endpointId: endpoint.id,
      reason: "backlog",
      attempting: delivery.id,
    });
    return { kind: "cancelled" };
  }

  const settle = async (
    answer: { statusCode: number | null; error: string | null; excerpt: string | null },
    retry: { retryable: boolean; retryAfterSeconds?: number | null },
  ): Promise<DeliveryResult> => {
    const at = retry.retryable
      ? nextAttemptAt(
          delivery.attempts,
          delivery.deadlineAt,
          retry.retryAfterSeconds ?? null,
          started,
        )
      : null;
    const delivered =
      answer.statusCode !== null && answer.statusCode >= 200 && answer.statusCode < 300;
    const settled = await settleAttempt({
      db,
      deliveryId,
      attempt: {
        statusCode: answer.statusCode,
        error: answer.error,
        responseExcerpt: answer.excerpt,
        durationMs: Date.now() - started,
        attemptedAt,
      },
      next: delivered
        ? { status: "delivered" }
        : at
          ? { status: "pending", at }
          : { status: "failed" },
    });
    if (delivered) return { kind: "delivered", statusCode: answer.statusCode ?? 200 };
    // Its endpoint was turned off during the attempt: no retry (./breaker.ts).
    if (settled === "cancelled") return { kind: "cancelled" };
    if (at) {
      return {
        kind: "retry",
        at,
        orgId: delivery.orgId,
        statusCode: answer.statusCode,
        error: answer.error,
      };
    }
    return { kind: "failed", statusCode: answer.statusCode, error: answer.error };
  };

  if (!endpoint?.enabled) {
    return settle(
      { statusCode: null, error: "endpoint_disabled", excerpt: "The endpoint is turned off." },
      { retryable: false },
    );
  }
  let target: Awaited<ReturnType<typeof resolveWebhookTarget>>;
  try {
    target = await resolveWebhookTarget(endpoint.url, { allowPrivate: env().isDemo, dns });
  } catch (error) {
    if (!(error instanceof WebhookTargetError)) throw error;
    // DNS may answer (or answer differently) later; a URL wrong in itself will not get better.
    const retryable =
      error.code === "dns" || error.code === "dns_timeout" || error.code === "forbidden_address";
    return settle({ statusCode: null, error: error.code, excerpt: error.message }, { retryable });
  }

  const secrets = [openWebhookSecret(endpoint.id, "secret", endpoint.secret)];
  if (
    endpoint.previousSecret &&
    endpoint.previousSecretExpiresAt &&
    endpoint.previousSecretExpiresAt.getTime() > started
  ) {
    secrets.push(openWebhookSecret(endpoint.id, "previous_secret", endpoint.previousSecret));
  }
  const headers = webhookHeaders(secrets, delivery.id, Math.floor(started / 1000), delivery.body);
  const result = await postWebhook(target, headers, delivery.body);
  if (result.kind === "error") {
    return settle(
      { statusCode: null, error: result.error, excerpt: result.detail },
      { retryable: true },
    );
  }
  const { statusCode, excerpt, retryAfterSeconds } = result;
  if (statusCode === 410) {
    // The receiver says it wants no more: the endpoint is turned off, as the spec advises.
    await turnOffEndpoint(db, { orgId: delivery.orgId, endpointId: endpoint.id, reason: "gone" });
    return settle({ statusCode, error: null, excerpt }, { retryable: false });
  }
  const error = statusCode >= 300 && statusCode < 400 ? "redirect_not_followed" : null;
  return settle({ statusCode, error, excerpt }, { retryable: true, retryAfterSeconds });
}
