import { randomBytes } from "node:crypto";
import type { Env } from "@/lib/env";

// The headers every page and route answers with. Scripts run only with this response's nonce
// (Next.js reads it from the request's Content-Security-Policy header and puts it on its own
// scripts); 'strict-dynamic' lets those scripts load the app's chunks. Styles may be inline:
// Next.js and React write style attributes that cannot carry a nonce.

export type SecurityHeaderOptions = {
  nonce: string;
  isDevelopment: boolean;
  isHttps: boolean;
  /** Origins a form may be sent on to: the sign-in and mailbox providers' authorisation pages. */
  formTargets: string[];
};

export function newNonce(): string {
  return randomBytes(18).toString("base64");
}

export function contentSecurityPolicy(o: SecurityHeaderOptions): string {
  const directives = [
    "default-src 'self'",
    // React's development build evaluates code to rebuild server stacks; production never does.
    `script-src 'self' 'nonce-${o.nonce}' 'strict-dynamic'${o.isDevelopment ? " 'unsafe-eval'" : ""}`,
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data: blob:",
    "font-src 'self'",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'self'",
    `form-action ${["'self'", ...o.formTargets].join(" ")}`,
    "frame-ancestors 'none'",
    ...(o.isHttps ? ["upgrade-insecure-requests"] : []),
  ];
  return directives.join("; ");
}

export function securityHeaders(
  o: SecurityHeaderOptions,
): Record<string, string> & { "Content-Security-Policy": string } {
  return {
    "Content-Security-Policy": contentSecurityPolicy(o),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
    // Two years; only where the app is served over https, or browsers would pin a broken origin.
    ...(o.isHttps ? { "Strict-Transport-Security": "max-age=63072000; includeSubDomains" } : {}),
  };
}

export function formTargetsFor(e: Env): string[] {
  return [
    ...(e.isDemo ? [e.demoIssuer] : []),
    ...(e.google ? ["https://accounts.google.com"] : []),
    ...(e.microsoft ? ["https://login.microsoftonline.com"] : []),
  ];
}
