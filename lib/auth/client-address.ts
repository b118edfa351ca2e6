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
