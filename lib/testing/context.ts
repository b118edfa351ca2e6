import type { Role } from "@/db/schema";
import type { CallContext, MemberContext, RequestInfo } from "@/lib/auth/context";

// Call contexts as the action wrapper and the API-key check build them, for tests that call
// lib/ functions directly.

export const TEST_REQUEST: RequestInfo = { ip: "198.51.100.4", userAgent: "vitest" };

export function memberContext(
  orgId: string,
  user: { id: string; email?: string | null },
  role: Role,
  request: RequestInfo = TEST_REQUEST,
): MemberContext {
  return {
    orgId,
    actor: { type: "user", id: user.id, label: user.email ?? null },
    role,
    request,
    allowedMailboxIds: null,
  };
}

export function keyContext(
  orgId: string,
  key: { id: string; name?: string; allowedMailboxIds?: string[] | null },
  request: RequestInfo = TEST_REQUEST,
): CallContext {
  return {
    orgId,
    actor: { type: "api_key", id: key.id, label: key.name ?? null },
    role: null,
    request,
    allowedMailboxIds: key.allowedMailboxIds ?? null,
  };
}
