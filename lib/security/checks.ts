import "server-only";
import type { ClientCredentialFacts } from "@/db/queries/organization-settings";
import { keyring } from "@/lib/crypto/runtime";
import type { MailProvider } from "@/lib/oauth/providers";

// The checks behind the Security page, pure: each turns one fact of the deployment into what
// a person should read of it.

export type Level = "ok" | "info" | "warning" | "alarm";

export type Check = { level: Level; text: string; href?: string; linkText?: string };

export type Practice = { number: number; title: string; explanation: string; checks: Check[] };

/** An event unsealed for longer than this means the sealer is stuck or the chain refused. */
export const UNSEALED_ALARM_MS = 60_000;
/** Warn this long before a client secret expires. */
export const SECRET_WARNING_DAYS = 30;
/** A key older than this should be rotated. */
export const KEY_ROTATION_DAYS = 365;

const DAY_MS = 86_400_000;

const BACKEND_NAMES = { upstash: "Upstash", redis: "Redis", memory: "in-process" } as const;

/** Days from `now` to the end of the UTC day `isoDate` (negative once past). */
export function daysUntil(isoDate: string, now: Date): number {
  const end = Date.parse(`${isoDate}T00:00:00Z`);
  const today = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate());
  return Math.round((end - today) / DAY_MS);
}

function secretExpiryCheck(provider: string, isoDate: string | null, now: Date): Check {
  if (isoDate === null) {
    return {
      level: "info",
      text: `${provider} client secret: expiry date not entered. Enter it below so Mailwarden can warn you ${SECRET_WARNING_DAYS} days before.`,
    };
  }
  const days = daysUntil(isoDate, now);
  if (days < 0) {
    return {
      level: "alarm",
      text: `${provider} client secret expired on ${isoDate}: sign-in and token refresh with ${provider} fail until a new secret is configured.`,
    };
  }
  if (days <= SECRET_WARNING_DAYS) {
    return {
      level: "warning",
      text: `${provider} client secret expires on ${isoDate}, in ${days} day${days === 1 ? "" : "s"}. Create a new secret in the provider's console, configure it, restart, then enter the new date here.`,
    };
  }
  return { level: "ok", text: `${provider} client secret expires on ${isoDate}, in ${days} days.` };
}

/** The warnings an administrator's own facts about the OAuth clients call for. */
export function credentialChecks(facts: ClientCredentialFacts, now: Date): Check[] {
  const publishing: Check =
    facts.googlePublishingStatus === "testing"
      ? {
          level: "warning",
          text: 'The Google app is in "Testing": Google ends its refresh tokens after 7 days, so every Google mailbox will need reconnecting each week. Publish the app ("In production") in the Google Cloud console.',
        }
      : facts.googlePublishingStatus === "production"
        ? { level: "ok", text: 'The Google app is published ("In production").' }
        : { level: "info", text: "The Google app's publishing status is not entered." };
  return [
    publishing,
    secretExpiryCheck("Google", facts.googleSecretExpiresOn, now),
    secretExpiryCheck("Microsoft", facts.microsoftSecretExpiresOn, now),
  ];
}

/** The rate-limit backend, and the warning when in-process limits are split across processes. */
export function limitBackendCheck(
  store: { backend: keyof typeof BACKEND_NAMES; ok: boolean },
  instancesSeen: number,
): Check {
  if (!store.ok) {
    return {
      level: "alarm",
      text: `The rate-limit store (${BACKEND_NAMES[store.backend]}) does not answer. Limits fail closed: sign-ins, connections and sends are refused as "temporarily unavailable" until it is back.`,
    };
  }
  if (store.backend === "memory" && instancesSeen > 1) {
    return {
      level: "warning",
      text: `Limits are kept in-process, and ${instancesSeen} instances were seen in the last 2 minutes: each counts on its own, so every limit is ${instancesSeen} times looser. Set REDIS_URL (or Upstash) so that all instances share one count.`,
    };
  }
  return {
    level: "ok",
    text:
      store.backend === "memory"
        ? `Limits are kept in-process; ${instancesSeen || 1} instance seen in the last 2 minutes.`
        : `Limits are kept in ${BACKEND_NAMES[store.backend]}, shared by every instance (${instancesSeen} seen in the last 2 minutes).`,
  };
}

export function tlsCheck(provider: MailProvider): Check {
  const { smtp } = provider;
  if (smtp.secure) {
    return {
      level: "ok",
      text: `${provider.label}: ${smtp.host}:${smtp.port}, TLS from the first byte, certificate verified.`,
    };
  }
  if (smtp.requireTLS) {
    return {
      level: "ok",
      text: `${provider.label}: ${smtp.host}:${smtp.port}, STARTTLS required before AUTH, certificate verified.`,
    };
  }
  return {
    level: "alarm",
    text: `${provider.label}: ${smtp.host}:${smtp.port} does not require TLS.`,
  };
}

export function keyChecks(seen: { id: string; firstSeenAt: Date }[], now: Date): Check[] {
  let ring: ReturnType<typeof keyring>;
  try {
    ring = keyring();
  } catch {
    return [
      {
        level: "alarm",
        text: "No token encryption key is configured: Mailwarden refuses to store or read tokens.",
      },
    ];
  }
  const current = ring.current.id;
  const first = seen.find((k) => k.id === current)?.firstSeenAt ?? null;
  const others = [...ring.byId.keys()].filter((id) => id !== current);
  const checks: Check[] = [];
  if (first === null) {
    checks.push({
      level: "info",
      text: `Tokens are encrypted with key "${current}"; its age is unknown (no instance has recorded it yet).`,
    });
  } else {
    const days = Math.floor((now.getTime() - first.getTime()) / DAY_MS);
    checks.push({
      level: days > KEY_ROTATION_DAYS ? "warning" : "ok",
      text: `Tokens are encrypted with key "${current}", first seen ${days} day${days === 1 ? "" : "s"} ago (${first.toISOString().slice(0, 10)}; the key may be older).${days > KEY_ROTATION_DAYS ? " Rotate it: it is over a year old." : ""}`,
      ...(days > KEY_ROTATION_DAYS ? { href: "/incidents", linkText: "Rotate the key" } : {}),
    });
  }
  if (others.length > 0) {
    checks.push({
      level: "info",
      text: `Older keys still readable: ${others.map((id) => `"${id}"`).join(", ")}. Drop them once re-encryption has finished.`,
      href: "/incidents",
      linkText: "See which cells each key holds",
    });
  }
  return checks;
}

export const STATIC: Check = { level: "ok", text: "Built in: always on, nothing to configure." };
