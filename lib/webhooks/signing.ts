import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";

// Standard Webhooks (https://www.standardwebhooks.com, spec 1.0.0), symmetric scheme:
//   secret     `whsec_` + base64 of 32 random bytes (the spec asks 24 to 64); the HMAC key is the
//              decoded bytes, not the text.
//   signed     `{webhook-id}.{webhook-timestamp}.{body}`, the body exactly as sent.
//   header     `webhook-signature: v1,<base64 HMAC-SHA-256>`, space-separated when several
//              secrets sign (during a rotation); a receiver accepts the request if any matches.

const PREFIX = "whsec_";
const SECRET_BYTES = 32;

export function generateWebhookSecret(): string {
  return `${PREFIX}${randomBytes(SECRET_BYTES).toString("base64")}`;
}

function keyOf(secret: string): Buffer {
  if (!secret.startsWith(PREFIX)) throw new Error("not a whsec_ secret");
  return Buffer.from(secret.slice(PREFIX.length), "base64");
}

/** One `v1,<base64>` signature. */
export function signatureOf(secret: string, id: string, timestamp: number, body: string): string {
  const mac = createHmac("sha256", keyOf(secret)).update(`${id}.${timestamp}.${body}`).digest();
  return `v1,${mac.toString("base64")}`;
}

/** The three headers of one attempt, signed by every secret given (newest first). */
export function webhookHeaders(
  secrets: string[],
  id: string,
  timestamp: number,
  body: string,
): Record<string, string> {
  return {
    "webhook-id": id,
    "webhook-timestamp": String(timestamp),
    "webhook-signature": secrets.map((s) => signatureOf(s, id, timestamp, body)).join(" "),
  };
}

/**
 * A receiver's check, as the spec describes it (used by the tests and shown in the README):
 * the timestamp within `toleranceSeconds`, then any `v1` signature equal in constant time.
 */
export function verifyWebhook(
  secret: string,
  headers: { id: string | null; timestamp: string | null; signature: string | null },
  body: string,
  { now = Date.now(), toleranceSeconds = 300 } = {},
): boolean {
  const { id, timestamp, signature } = headers;
  if (!id || !timestamp || !signature || !/^\d+$/.test(timestamp)) return false;
  if (Math.abs(now / 1000 - Number(timestamp)) > toleranceSeconds) return false;
  const expected = Buffer.from(signatureOf(secret, id, Number(timestamp), body));
  return signature.split(" ").some((candidate) => {
    const given = Buffer.from(candidate);
    return given.length === expected.length && timingSafeEqual(given, expected);
  });
}
