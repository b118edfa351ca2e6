import { type NextRequest, NextResponse } from "next/server";
import { env } from "@/lib/env";
import { formTargetsFor, newNonce, securityHeaders } from "@/lib/security-headers";

// Runs before every page and route handler: a fresh nonce per request and the security headers
// on every answer. Pages render per request (the root layout waits for the connection), so each
// page carries the nonce of its own response.
export function proxy(request: NextRequest) {
  const e = env();
  const nonce = newNonce();
  const headers = securityHeaders({
    nonce,
    isDevelopment: e.NODE_ENV === "development",
    isHttps: e.APP_URL.startsWith("https://"),
    formTargets: formTargetsFor(e),
  });
  const csp = headers["Content-Security-Policy"];
  const forwarded = new Headers(request.headers);
  forwarded.set("x-nonce", nonce);
  forwarded.set("content-security-policy", csp);
  const response = NextResponse.next({ request: { headers: forwarded } });
  for (const [name, value] of Object.entries(headers)) response.headers.set(name, value);
  return response;
}

export const config = {
  // Built assets get the static headers from next.config.ts; everything else passes here.
  matcher: ["/((?!_next/static|_next/image|favicon.ico).*)"],
};
