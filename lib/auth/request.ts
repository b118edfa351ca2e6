import "server-only";
import { headers } from "next/headers";
import type { RequestInfo } from "@/lib/audit/events";
import { env } from "@/lib/env";
import { clientAddressFrom } from "./client-address";

export type { RequestInfo } from "@/lib/audit/events";

/** The caller's address never comes from a header the client writes (see client-address.ts). */
export function requestInfoFrom(h: Headers): RequestInfo {
  return {
    ip: clientAddressFrom(h, env().TRUSTED_PROXY_HOPS),
    userAgent: h.get("user-agent"),
  };
}

export async function requestInfo(): Promise<RequestInfo> {
  return requestInfoFrom(await headers());
}
