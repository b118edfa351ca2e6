// The events an endpoint can choose (no imports: client forms read this list too).
export const WEBHOOK_EVENT_TYPES = [
  "message.sent",
  "message.failed",
  "mailbox.needs_reconnect",
  "mailbox.admin_action_required",
  "mailbox.recovered",
] as const;

export type WebhookEventType = (typeof WEBHOOK_EVENT_TYPES)[number];

/** A test delivery's type: sent only by the test button, never chosen. */
export const WEBHOOK_TEST_EVENT = "webhook.test";

export const WEBHOOK_EVENT_LABELS: Record<WebhookEventType, string> = {
  "message.sent": "A message sent through the API was accepted by the provider",
  "message.failed": "A message sent through the API failed",
  "mailbox.needs_reconnect": "A mailbox needs reconnecting",
  "mailbox.admin_action_required": "A mailbox needs an administrator",
  "mailbox.recovered": "A mailbox works again",
};

export function isWebhookEventType(value: string): value is WebhookEventType {
  return (WEBHOOK_EVENT_TYPES as readonly string[]).includes(value);
}
