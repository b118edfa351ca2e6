import "server-only";
import { type DbOrTx, inTransaction } from "@/db";
import { turnOffWebhookEndpoint, type WebhookEndpointSummary } from "@/db/queries/webhooks";
import type { Actor } from "@/lib/audit/events";
import { writeAuditEvent } from "@/lib/audit/write";
import type { RequestInfo } from "@/lib/auth/context";
import { env } from "@/lib/env";
import { queueNotification } from "@/lib/notifications";

// Turning an endpoint off, whoever does it (ARCHITECTURE.md, Webhooks): what waits for it is
// cancelled in the same transaction, so nothing queued before reaches the receiver afterwards,
// even if the endpoint is turned on again. Mailwarden does it in two cases, and then emails the
// organisation's owners and admins (lib/notifications): the receiver answered 410 Gone, or the
// endpoint holds too much. That bound: every event makes one delivery per endpoint and a dead or
// hanging receiver keeps each waiting for days, so an organisation (anyone: sign-up is open)
// could fill the database and the queue. An endpoint with more than MAX_WAITING_DELIVERIES
// waiting is turned off when one of them is next taken for an attempt (the claim counts them:
// lib/webhooks/deliver.ts). The send path is untouched: its INSERT … SELECT already skips
// endpoints that are off.

/** Deliveries one endpoint may have waiting (pending or mid-attempt). */
export const MAX_WAITING_DELIVERIES = 5_000;

/** Why an endpoint is off: a person turned it off, or Mailwarden did (410 Gone, backlog). */
type TurnOffReason = "person" | "gone" | "backlog";

/** An endpoint's state as its pages show it. */
export function endpointStateLabel(endpoint: { enabled: boolean; disabledReason: string | null }) {
  if (endpoint.enabled) return "On";
  if (endpoint.disabledReason === "gone") return "Off: the receiver answered 410 Gone";
  if (endpoint.disabledReason === "backlog") return "Off: too many deliveries waiting";
  return "Off";
}

/**
 * Turns the endpoint off and cancels the deliveries waiting for it, `attempting` (a delivery
 * claimed for an attempt) too when given. `by` is the person who asked (reason "person");
 * without it, Mailwarden itself, which also tells the owners and admins. Audited, with how many
 * were cancelled, when this call turned it off; an endpoint already off stays as it is (its
 * reason too). `db` may be a transaction: everything here commits with it.
 */
export async function turnOffEndpoint(
  db: DbOrTx,
  {
    orgId,
    endpointId,
    reason,
    attempting,
    by,
  }: {
    orgId: string;
    endpointId: string;
    reason: TurnOffReason;
    attempting?: string;
    by?: { actor: Actor; request: RequestInfo };
  },
): Promise<{ turnedOff: WebhookEndpointSummary | null; cancelled: number }> {
  return inTransaction(db, async (tx) => {
    const result = await turnOffWebhookEndpoint({
      db: tx,
      orgId,
      endpointId,
      reason,
      ...(attempting ? { alsoCancel: attempting } : {}),
    });
    const { turnedOff, cancelled } = result;
    if (!turnedOff) return result;
    const host = new URL(turnedOff.url).host;
    await writeAuditEvent(tx, {
      orgId,
      actor: by?.actor ?? { type: "system", label: "webhook delivery" },
      action: "webhook.endpoint_disabled",
      target: { type: "webhook_endpoint", id: endpointId },
      outcome: "success",
      request: by?.request ?? null,
      metadata: {
        reason,
        host,
        cancelled,
        ...(reason === "backlog" ? { limit: MAX_WAITING_DELIVERIES } : {}),
      },
    });
    if (reason !== "person") {
      await queueNotification(tx, {
        orgId,
        kind: "webhook_endpoint_disabled",
        ...turnedOffWording({ endpointId, host, reason, cancelled }),
      });
    }
    return result;
  });
}

/** The owners' and admins' email: which endpoint (its host only: a path may hold a token), why. */
function turnedOffWording(input: {
  endpointId: string;
  host: string;
  reason: "gone" | "backlog";
  cancelled: number;
}): { title: string; body: string } {
  const why =
    input.reason === "gone"
      ? "its receiver answered 410 Gone, which says it wants no more events"
      : `more than ${MAX_WAITING_DELIVERIES.toLocaleString("en")} of its deliveries were waiting: its receiver was failing or too slow to keep up`;
  const cancelled = `${input.cancelled.toLocaleString("en")} waiting ${input.cancelled === 1 ? "delivery was" : "deliveries were"} cancelled and will not be sent.`;
  return {
    title: `Webhook endpoint turned off: ${input.host}`,
    body: `Mailwarden turned off the webhook endpoint at ${input.host} because ${why}. ${cancelled} Until it is turned on again, no events are sent to it. Once the receiver works, turn the endpoint on again on the Webhooks page (${env().APP_URL}/webhooks/${input.endpointId}); new events are delivered from then on.`,
  };
}
