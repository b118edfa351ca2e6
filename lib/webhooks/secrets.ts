import "server-only";
import { decryptField, encryptField } from "@/lib/crypto";
import { keyring } from "@/lib/crypto/runtime";

// A webhook endpoint's signing secrets live only sealed (AES-256-GCM, AAD = key id, table,
// column, row: ARCHITECTURE.md, Security practices 4). Shown once, at creation or rotation.

type SecretColumn = "secret" | "previous_secret";

export function sealWebhookSecret(endpointId: string, column: SecretColumn, secret: string) {
  return encryptField(keyring(), secret, { table: "webhook_endpoints", column, rowId: endpointId });
}

export function openWebhookSecret(endpointId: string, column: SecretColumn, value: string) {
  return decryptField(keyring(), value, { table: "webhook_endpoints", column, rowId: endpointId });
}
