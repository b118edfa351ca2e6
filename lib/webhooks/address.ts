import "server-only";
import { lookup } from "node:dns/promises";
import { BlockList, isIP } from "node:net";

// Where a webhook may go (ARCHITECTURE.md, Webhooks). Outside demo mode an endpoint must be
// https and every address its host resolves to must be public: not loopback, private,
// link-local, CGNAT, multicast, unspecified, reserved, or an IPv4-mapped/NAT64 form of those.
// The check runs after DNS resolution at each delivery, and the connection is then made to
// the very address that was checked (lib/webhooks/http.ts), so a DNS answer that changes
// between the check and the connect (rebinding) cannot redirect it.

const blocked = new BlockList();
for (const [net, prefix] of [
  ["0.0.0.0", 8], // "this network", the unspecified address
  ["10.0.0.0", 8],
  ["100.64.0.0", 10], // CGNAT
  ["127.0.0.0", 8],
  ["169.254.0.0", 16], // link-local (cloud metadata lives here)
  ["172.16.0.0", 12],
  ["192.0.0.0", 24],
  ["192.0.2.0", 24],
  ["192.168.0.0", 16],
  ["198.18.0.0", 15],
  ["198.51.100.0", 24],
  ["203.0.113.0", 24],
  ["224.0.0.0", 4], // multicast
  ["240.0.0.0", 4], // reserved, broadcast
] as const) {
  blocked.addSubnet(net, prefix, "ipv4");
}
for (const [net, prefix] of [
  ["::", 128], // unspecified
  ["::1", 128],
  ["64:ff9b::", 96], // NAT64: checked through its embedded IPv4 below, refused if unmappable
  ["100::", 64], // discard
  ["2001:db8::", 32], // documentation
  ["fc00::", 7], // unique local
  ["fe80::", 10], // link-local
  ["fec0::", 10], // old site-local
  ["ff00::", 8], // multicast
] as const) {
  blocked.addSubnet(net, prefix, "ipv6");
}

/** The IPv4 address an IPv6 address stands for (mapped, compatible, NAT64), if any. */
function embeddedIpv4(address: string): string | null {
  const lower = address.toLowerCase();
  const dotted = /^(?:::ffff:|::|64:ff9b::)(\d+\.\d+\.\d+\.\d+)$/.exec(lower);
  if (dotted?.[1]) return dotted[1];
  const hex = /^(?:::ffff:|64:ff9b::)([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(lower);
  if (hex?.[1] && hex[2]) {
    const hi = Number.parseInt(hex[1], 16);
    const lo = Number.parseInt(hex[2], 16);
    return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
  }
  return null;
}

/** Whether an IP address (v4 or v6 text) is one a webhook may not reach outside demo mode. */
export function isForbiddenAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 4) return blocked.check(address, "ipv4");
  if (family !== 6) return true;
  const v4 = embeddedIpv4(address);
  if (v4) return blocked.check(v4, "ipv4");
  // Any other address in ::/96 (IPv4-compatible) or ::ffff:0:0/96 we could not read: refuse.
  if (/^::(ffff:)?[0-9a-f.:]*$/i.test(address) && address !== "::") return true;
  return blocked.check(address, "ipv6");
}

export type ResolvedTarget = { url: URL; address: string; family: 4 | 6 };

/** A webhook URL refused before any connection; `reason` is said to the person. */
export class WebhookTargetError extends Error {
  constructor(
    readonly code: "invalid_url" | "scheme" | "https_required" | "forbidden_address" | "dns",
    message: string,
  ) {
    super(message);
    this.name = "WebhookTargetError";
  }
}

const MAX_URL_LENGTH = 2_000;

/** Syntax only: an absolute http(s) URL without credentials (https outside demo mode). */
export function parseWebhookUrl(text: string, { allowPrivate }: { allowPrivate: boolean }): URL {
  let url: URL;
  try {
    if (text.length > MAX_URL_LENGTH) throw new Error("too long");
    url = new URL(text);
  } catch {
    throw new WebhookTargetError(
      "invalid_url",
      "Enter a full URL, such as https://example.com/hooks.",
    );
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") {
    throw new WebhookTargetError("scheme", "Only http:// and https:// URLs can receive webhooks.");
  }
  if (url.protocol === "http:" && !allowPrivate) {
    throw new WebhookTargetError(
      "https_required",
      "Use an https:// URL: webhooks carry details of your mail and are sent only over TLS.",
    );
  }
  if (url.username || url.password) {
    throw new WebhookTargetError("invalid_url", "Leave credentials out of the URL.");
  }
  url.hash = "";
  return url;
}

/**
 * Resolves the URL's host and checks every address it resolves to; returns the address to
 * connect to. Refuses the whole host when any of its addresses is forbidden (an attacker's DNS
 * may answer with a public and a private address and let the client pick).
 */
export async function resolveWebhookTarget(
  text: string,
  { allowPrivate }: { allowPrivate: boolean },
): Promise<ResolvedTarget> {
  const url = parseWebhookUrl(text, { allowPrivate });
  const host = url.hostname.replace(/^\[|\]$/g, "");
  let addresses: { address: string; family: number }[];
  if (isIP(host)) {
    addresses = [{ address: host, family: isIP(host) }];
  } else {
    try {
      addresses = await lookup(host, { all: true, verbatim: true });
    } catch {
      throw new WebhookTargetError("dns", `The host ${host} could not be resolved.`);
    }
  }
  if (addresses.length === 0) {
    throw new WebhookTargetError("dns", `The host ${host} could not be resolved.`);
  }
  if (!allowPrivate) {
    const bad = addresses.find((a) => isForbiddenAddress(a.address));
    if (bad) {
      throw new WebhookTargetError(
        "forbidden_address",
        `${host} resolves to ${bad.address}, a loopback, private or otherwise internal address; webhooks go only to public addresses.`,
      );
    }
  }
  const [first] = addresses as [{ address: string; family: number }];
  return { url, address: first.address, family: first.family === 6 ? 6 : 4 };
}
