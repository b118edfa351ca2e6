import "server-only";
import { Resolver } from "node:dns/promises";
import { BlockList, isIP } from "node:net";

// Where a webhook may go (ARCHITECTURE.md, Webhooks). Outside demo mode an endpoint must be
// https on port 443 or 8443, and every address its host resolves to must be public: not
// loopback, private, link-local, CGNAT, multicast, unspecified, reserved, or an
// IPv4-mapped/NAT64 form of those.
// The check runs after DNS resolution at each delivery, and the connection is then made to
// the very address that was checked (lib/webhooks/http.ts), so a DNS answer that changes
// between the check and the connect (rebinding) cannot redirect it.
//
// Names are resolved with c-ares (dns.promises.Resolver, A and AAAA), not dns.lookup():
// lookup() runs getaddrinfo on libuv's threadpool (4 threads) with no timeout of its own, so a
// few hosts whose DNS never answers, registered by anyone who may manage webhooks, would hold
// every thread that file I/O, crypto and other lookups need. c-ares runs on the event loop; each
// resolution has its own channel, a deadline (WEBHOOK_DNS_TIMEOUT_MS), and is cancelled at it.
// /etc/hosts is not read: "localhost" and names under it are loopback (RFC 6761), other names
// go to DNS.

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
  ["64:ff9b:1::", 48], // local-use NAT64 (RFC 8215): whatever the operator maps it to
  ["100::", 64], // discard
  ["2001::", 32], // Teredo: an IPv4 tunnel whose other end we cannot check
  ["2002::", 16], // 6to4: an IPv4 address inside (2002:7f00:1:: is 127.0.0.1's)
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
    readonly code:
      | "invalid_url"
      | "scheme"
      | "https_required"
      | "port"
      | "forbidden_address"
      | "dns"
      | "dns_timeout",
    message: string,
  ) {
    super(message);
    this.name = "WebhookTargetError";
  }
}

const MAX_URL_LENGTH = 2_000;
// Besides 443 (the URL's default, so `url.port` is empty): the usual alternative https port.
export const HTTPS_PORTS: ReadonlySet<string> = new Set(["443", "8443"]);

/**
 * Syntax only: an absolute http(s) URL without credentials (outside demo mode: https, on port
 * 443 or 8443).
 */
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
  // A public host may also run ssh, smtp, a database or a cache: a POST aimed at one of those
  // ports would make Mailwarden talk to it (or probe which are open) for whoever registers it.
  // An allow-list, like Stripe's (443 only): a deny-list of such ports is never complete.
  if (!allowPrivate && url.port !== "" && !HTTPS_PORTS.has(url.port)) {
    throw new WebhookTargetError(
      "port",
      `Port ${url.port} is not allowed: webhooks go only to port 443 (the https default) or 8443.`,
    );
  }
  url.hash = "";
  return url;
}

/** How long a host's A and AAAA answers may take, together, before it is refused. */
export const WEBHOOK_DNS_TIMEOUT_MS = 5_000;

/**
 * Where and how long to ask. `servers` (ip or ip:port, as Resolver.setServers takes) defaults to
 * the system's (/etc/resolv.conf); tests point it at a server that never answers.
 */
export type DnsOptions = { servers?: readonly string[]; timeoutMs?: number };

type Resolved = { address: string; family: 4 | 6 };

const LOOPBACK: Resolved[] = [
  { address: "127.0.0.1", family: 4 },
  { address: "::1", family: 6 },
];

/** A and AAAA of `host`, within the deadline; throws WebhookTargetError ("dns", "dns_timeout"). */
async function resolveHost(host: string, dns: DnsOptions): Promise<Resolved[]> {
  const name = host.toLowerCase().replace(/\.$/, "");
  if (name === "localhost" || name.endsWith(".localhost")) return LOOPBACK;
  const timeoutMs = dns.timeoutMs ?? WEBHOOK_DNS_TIMEOUT_MS;
  // c-ares's own retries fit in the deadline (its defaults, 5 s and 4 tries, take over a minute).
  const resolver = new Resolver({ timeout: Math.max(100, Math.floor(timeoutMs / 3)), tries: 2 });
  if (dns.servers) resolver.setServers(dns.servers);
  const settled = (family: 4 | 6, query: Promise<string[]>) =>
    query.then(
      (addresses) => ({ addresses: addresses.map((address) => ({ address, family })) }),
      (error: NodeJS.ErrnoException) => ({ error: error.code ?? "unknown" }),
    );
  let timer: NodeJS.Timeout | undefined;
  try {
    const answers = await Promise.race([
      Promise.all([settled(4, resolver.resolve4(name)), settled(6, resolver.resolve6(name))]),
      new Promise<null>((resolve) => {
        timer = setTimeout(() => resolve(null), timeoutMs);
      }),
    ]);
    const failures = answers?.flatMap((a) => ("error" in a ? [a.error] : [])) ?? ["ETIMEOUT"];
    // Addresses of one family are enough (IPv4 first, the one connected to): only a checked
    // address is ever connected to, so the other family failing (a broken AAAA answer, say)
    // takes nothing away.
    const found = answers?.flatMap((a) => ("addresses" in a ? a.addresses : [])) ?? [];
    if (found.length > 0) return found;
    if (failures.includes("ETIMEOUT")) {
      throw new WebhookTargetError(
        "dns_timeout",
        `No DNS answer for ${host} within ${timeoutMs / 1000} s: check the host name, or try again later.`,
      );
    }
    throw new WebhookTargetError("dns", `The host ${host} could not be resolved.`);
  } finally {
    clearTimeout(timer);
    // Queries still out (the deadline passed) end now instead of holding the channel.
    resolver.cancel();
  }
}

/**
 * Resolves the URL's host and checks every address it resolves to; returns the address to
 * connect to. Refuses the whole host when any of its addresses is forbidden (an attacker's DNS
 * may answer with a public and a private address and let the client pick).
 */
export async function resolveWebhookTarget(
  text: string,
  { allowPrivate, dns = {} }: { allowPrivate: boolean; dns?: DnsOptions },
): Promise<ResolvedTarget> {
  const url = parseWebhookUrl(text, { allowPrivate });
  const host = url.hostname.replace(/^\[|\]$/g, "");
  const family = isIP(host);
  const addresses: Resolved[] =
    family === 4 || family === 6 ? [{ address: host, family }] : await resolveHost(host, dns);
  if (!allowPrivate) {
    const bad = addresses.find((a) => isForbiddenAddress(a.address));
    if (bad) {
      throw new WebhookTargetError(
        "forbidden_address",
        `${host} resolves to ${bad.address}, a loopback, private or otherwise internal address; webhooks go only to public addresses.`,
      );
    }
  }
  const [first] = addresses as [Resolved];
  return { url, address: first.address, family: first.family };
}
