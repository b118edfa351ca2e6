import "server-only";
import type { DbOrTx } from "@/db";
import { type EventDeliveriesInput, insertEventDeliveries } from "@/db/queries/webhooks";
import { env } from "@/lib/env";
import { dispatchWebhookDeliveries } from "./dispatch";
import type { WebhookEventType } from "./event-types";

// Events into deliveries. `emitWebhookEvent` writes one delivery per enabled endpoint of the
// organisation that chose the event type, with the `db` it is given — the transaction of the
// change it reports, where there is one, so the event exists exactly when the change does.
// The body is built once: the Standard Webhooks shape `{ type, timestamp, data }`.

export type WebhookEvent = {
  orgId: string;
  type: WebhookEventType;
  /** Ids and states only; never a secret, a token or a recipient's address. */
  data: Record<string, unknown>;
};

export type WebhookEmission = {
  deliveryIds: string[];
  /** Hands the deliveries to the queue; call once the transaction that wrote them committed. */
  dispatch(): Promise<void>;
};

export function webhookBody(type: string, data: Record<string, unknown>, at = new Date()): string {
  return JSON.stringify({ type, timestamp: at.toISOString(), data });
}

/**
 * An event as the values its deliveries are written from: by emitWebhookEvent, or as a part of
 * another statement (the send's final update, a single data-modifying WITH:
 * db/queries/message-outcomes.ts), so that it commits with the change at no extra round trip;
 * that part's ids are not returned: when it wrote any, call `kickWebhookSweep()` after.
 */
export function webhookEventInput(event: WebhookEvent): EventDeliveriesInput {
  return {
    orgId: event.orgId,
    type: event.type,
    body: webhookBody(event.type, event.data),
    deadlineSeconds: env().WEBHOOK_DELIVERY_DEADLINE_HOURS * 3600,
  };
}

export async function emitWebhookEvent(db: DbOrTx, event: WebhookEvent): Promise<WebhookEmission> {
  const deliveryIds = await insertEventDeliveries({ db, ...webhookEventInput(event) });
  return {
    deliveryIds,
    // Even if it is never called (the process died after the commit), the sweeper finds the
    // deliveries due (lib/webhooks/dispatch.ts).
    dispatch: () => dispatchWebhookDeliveries(event.orgId, deliveryIds),
  };
}
