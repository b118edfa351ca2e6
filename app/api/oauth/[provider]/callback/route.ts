import { type NextRequest, NextResponse } from "next/server";
import { addressLimitKey } from "@/lib/auth/client-address";
import { requestInfoFrom } from "@/lib/auth/request";
import { getSessionContext } from "@/lib/auth/session";
import { completeConnect } from "@/lib/oauth/callback";
import { getMailProvider } from "@/lib/oauth/providers";
import {
  enforceRateLimit,
  LimitStoreUnavailableError,
  RateLimitedError,
} from "@/lib/ratelimit/runtime";

export const dynamic = "force-dynamic";

/**
 * A callback from nobody signed in is always refused, and each refusal is audited: past a few
 * a minute from one address, refuse without doing (or recording) anything.
 */
async function refuseAnonymousCallback(request: NextRequest, provider: string) {
  const ip = requestInfoFrom(request.headers).ip;
  try {
    await enforceRateLimit("oauthCallbackAnonymous", [addressLimitKey(ip)]);
    return null;
  } catch (error) {
    const unavailable = error instanceof LimitStoreUnavailableError;
    if (!(error instanceof RateLimitedError) && !unavailable) throw error;
    const target = new URL(`/mailboxes/connect/${encodeURIComponent(provider)}`, request.url);
    target.searchParams.set("result", "refused");
    target.searchParams.set("reason", unavailable ? "unavailable" : "rate_limited");
    return NextResponse.redirect(target, {
      status: 303,
      headers: { "Retry-After": String(error.retryAfterSeconds) },
    });
  }
}

// One callback per provider (a distinct redirect URI each, RFC 9700 mix-up defence). The page
// it sends the person to explains the outcome; no provider text is reflected into it.
export async function GET(
  request: NextRequest,
  { params }: { params: Promise<{ provider: string }> },
) {
  const { provider } = await params;
  // Only a configured provider's callback does any work; nothing is audited for the rest.
  if (!getMailProvider(provider)) return new NextResponse("Unknown provider.", { status: 404 });
  const session = await getSessionContext();
  const refusal = session ? null : await refuseAnonymousCallback(request, provider);
  if (refusal) return refusal;
  const result = await completeConnect({
    providerId: provider,
    callbackUrl: new URL(request.url),
    userId: session?.user.id ?? null,
    request: requestInfoFrom(request.headers),
  });
  const target = new URL(`/mailboxes/connect/${encodeURIComponent(provider)}`, request.url);
  if (result.kind === "connected") {
    const done = new URL("/mailboxes", request.url);
    done.searchParams.set("connected", result.mailboxId);
    return NextResponse.redirect(done, 303);
  }
  target.searchParams.set("result", result.kind);
  if (result.kind === "missing_scope") target.searchParams.set("missing", result.missing.join(" "));
  if (result.kind === "refused") {
    target.searchParams.set("reason", result.reason);
    if (result.mailboxId) target.searchParams.set("mailbox", result.mailboxId);
  }
  // What became of a grant the provider issued: the page must not claim it was withdrawn.
  if ("grantWithdrawn" in result && result.grantWithdrawn) {
    target.searchParams.set("withdrawn", result.grantWithdrawn);
  }
  return NextResponse.redirect(target, 303);
}
