import "server-only";
import { NextResponse } from "next/server";
import {
  enforceRateLimit,
  LimitStoreUnavailableError,
  RateLimitedError,
} from "@/lib/ratelimit/runtime";
import { addressLimitKey } from "./client-address";
import { signInProviderList } from "./config";
import { requestInfoFrom } from "./request";

// Auth.js's own endpoints can be called without our sign-in page: a sign-in POST
// (/api/auth/signin/<provider>) and the provider's return (/api/auth/callback/<provider>) are
// sign-in attempts, counted per client address before Auth.js does any work for them.

type Attempt = { kind: "signin" | "callback"; provider: string };

function attemptOf(request: Request): Attempt | null {
  const [kind, provider] = new URL(request.url).pathname.replace(/^\/api\/auth\//, "").split("/");
  if (kind === "signin" && request.method === "POST" && provider) return { kind, provider };
  if (kind === "callback" && provider !== undefined) return { kind, provider };
  return null;
}

/** A refusal to send instead of calling Auth.js, or null to let the request through. */
export async function refuseAuthRequest(request: Request): Promise<Response | null> {
  const attempt = attemptOf(request);
  if (!attempt) return null;
  if (!signInProviderList().some((p) => p.id === attempt.provider)) {
    return new NextResponse("Unknown sign-in provider.", { status: 404 });
  }
  const key = addressLimitKey(requestInfoFrom(request.headers).ip);
  try {
    await enforceRateLimit(attempt.kind === "signin" ? "signIn" : "signInCallback", [key]);
    return null;
  } catch (error) {
    // The store being down is not the caller's doing: 503 and "temporarily unavailable".
    const unavailable = error instanceof LimitStoreUnavailableError;
    if (!(error instanceof RateLimitedError) && !unavailable) throw error;
    const retryAfter = { "Retry-After": String(error.retryAfterSeconds) };
    // A callback is a browser coming back from the provider: show it the sign-in page's message.
    if (attempt.kind === "callback") {
      const code = unavailable ? "Unavailable" : "RateLimited";
      const target = new URL(`/sign-in?error=${code}`, request.url);
      return NextResponse.redirect(target, { status: 303, headers: retryAfter });
    }
    return new NextResponse(error.message, {
      status: unavailable ? 503 : 429,
      headers: retryAfter,
    });
  }
}
