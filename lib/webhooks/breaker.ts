import "server-only";
import type { Database } from "@/db";
import { turnOffWebhookEndpoint } from "@/db/queries/webhooks";
import { writeAuditEvent } from "@/lib/audit/write";

// The bound on what one endpoint holds (ARCHITECTURE.md, Webhooks). Every event makes one
// delivery per endpoint and a dead or hanging receiver keeps each waiting for days, so an
// organisation (anyone: sign-up is open) could fill the database and the queue. An endpoint with
// more than MAX_WAITING_DELIVERIES waiting is turned off when one of them is next taken for an
// attempt (the claim counts them: lib/webhooks/deliver.ts), and what waits for it is cancelled.
// The send path is untouched: its INSERT … SELECT already skips endpoints that are off.

/** Deliveries one endpoint may have waiting (pending or mid-attempt). */
export const MAX_WAITING_DELIVERIES = 5_000;

/** An endpoint's state as its pages show it. */
export function endpointStateLabel(endpoint: { enabled: boolean; disabledReason: string | null }) {
  if (endpoint.enabled) return "On";
  if (endpoint.disabledReason === "gone") return "Off: the receiver answered 410 Gone";
  if (endpoint.disabledReason === "backlog") return "Off: too many deliveries waiting";
  return "Off";
}

/**
 * Turns the endpoint off (`reason`: "backlog", or "gone" when its receiver answered 410) and
 * cancels the deliveries waiting for it, `attempting` (the claimed delivery) too when given.
 * Audited when this call turned it off; an endpoint already off is left as it is.
 */
export async function turnOffEndpoint(
  db: Database,
  {
    orgId,
    endpointId,
    reason,
    attempting,
  }: { orgId: string; endpointId: string; reason: "backlog" | "gone"; attempting?: string },
): Promise<void> {
  await db.transaction(async (tx) => {
    const { turnedOff, cancelled } = await turnOffWebhookEndpoint({
      db: tx,
      orgId,
      endpointId,
      reason,
      ...(attempting ? { alsoCancel: attempting } : {}),
    });
    if (!turnedOff) return;
    await writeAuditEvent(tx, {
      orgId,
      actor: { type: "system", label: "webhook delivery" },
      action: "webhook.endpoint_disabled",
      target: { type: "webhook_endpoint", id: endpointId },
      outcome: "success",
      metadata: {
        reason,
        host: new URL(turnedOff.url).host,
        cancelled,
        ...(reason === "backlog" ? { limit: MAX_WAITING_DELIVERIES } : {}),
      },
    });
  });
}
