import "server-only";
import { isIP } from "node:net";

/**
 * Written by scripts/server.mjs from the request's socket, after dropping any copy the client
 * sent. A request that did not come through that server has no trusted address at all.
 */
export const CLIENT_ADDRESS_HEADER = "x-mailwarden-client-ip";

/** Longest X-Forwarded-For we read; a longer one is cut, never parsed whole. */
const MAX_FORWARDED_LENGTH = 2_048;

function normalise(address: string | undefined): string | null {
  if (!address) return null;
  const bare = address.trim().replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/i, "");
  return isIP(bare) ? bare.toLowerCase() : null;
}

/**
 * The client's address as the outermost trusted party saw it. Each trusted proxy appends the
 * address it received the request from to X-Forwarded-For, and our server adds the socket's
 * address after them: with `hops` proxies in front of the app, the client is the entry `hops`
 * places from the right of that chain. Everything further left was written by the client and
 * is never used. A chain shorter than `hops` (a request that skipped a proxy) falls back to
 * its left-most entry, the furthest address anyone we trust reported. Not an IP address → null.
 */
export function clientAddressFrom(h: Headers, hops: number): string | null {
  const socket = h.get(CLIENT_ADDRESS_HEADER);
  if (!socket) return null;
  if (hops === 0) return normalise(socket);
  const forwarded = (h.get("x-forwarded-for") ?? "").slice(-MAX_FORWARDED_LENGTH).split(",");
  const chain = [...forwarded.map((entry) => entry.trim()).filter(Boolean), socket];
  return normalise(chain[Math.max(0, chain.length - 1 - hops)]);
}

/** The first four groups of an IPv6 address that isIP accepted, each without leading zeros. */
function prefix64(address: string): string {
  const bare = address.split("%")[0] ?? "";
  const [head = "", tail] = bare.split("::");
  const groups = (part: string) => (part === "" ? [] : part.split(":"));
  // A dotted IPv4 tail fills two groups; it is past the first four in any valid address.
  const width = (list: string[]) => list.reduce((n, g) => n + (g.includes(".") ? 2 : 1), 0);
  const left = groups(head);
  const right = tail === undefined ? [] : groups(tail);
  const all =
    tail === undefined
      ? left
      : [...left, ...Array(8 - width(left) - width(right)).fill("0"), ...right];
  return all
    .slice(0, 4)
    .map((g) => Number.parseInt(g, 16).toString(16))
    .join(":");
}

/**
 * What a per-address limit or sample counts a client under: an IPv4 address itself, an IPv6
 * address's /64. One subscriber routinely holds a whole /64 and could rotate through its 2^64
 * addresses, each a fresh limit, so the /64 is the smallest unit that means one client.
 */
export function addressLimitKey(address: string | null | undefined): string {
  if (!address) return "ip:unknown";
  return address.includes(":") ? `ip:${prefix64(address)}::/64` : `ip:${address}`;
}
