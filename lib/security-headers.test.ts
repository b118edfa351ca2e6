import { describe, expect, it } from "vitest";
import { parseEnv } from "./env";
import { formTargetsFor, newNonce, securityHeaders } from "./security-headers";

const base = { nonce: "abc123", isDevelopment: false, isHttps: false, formTargets: [] };

describe("securityHeaders", () => {
  it("lets scripts run only with the nonce, never inline, and allows no framing", () => {
    const csp = securityHeaders(base)["Content-Security-Policy"];
    const scriptSrc = csp.split("; ").find((d) => d.startsWith("script-src "));
    expect(scriptSrc).toBe("script-src 'self' 'nonce-abc123' 'strict-dynamic'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).not.toContain("upgrade-insecure-requests");
  });

  it("sends HSTS and upgrades requests only over https", () => {
    expect(securityHeaders(base)["Strict-Transport-Security"]).toBeUndefined();
    const https = securityHeaders({ ...base, isHttps: true });
    expect(https["Strict-Transport-Security"]).toMatch(/^max-age=\d{8}/);
    expect(https["Content-Security-Policy"]).toContain("upgrade-insecure-requests");
  });

  it("allows eval only in development, where React's dev build needs it", () => {
    const dev = securityHeaders({ ...base, isDevelopment: true })["Content-Security-Policy"];
    expect(dev).toContain("'unsafe-eval'");
    expect(securityHeaders(base)["Content-Security-Policy"]).not.toContain("unsafe-eval");
  });

  it("makes a different nonce each time", () => {
    expect(newNonce()).not.toBe(newNonce());
  });

  it("lets forms go on to the configured providers' sign-in pages only", () => {
    expect(formTargetsFor(parseEnv({}))).toEqual(["http://localhost:3001"]);
    const google = parseEnv({ GOOGLE_CLIENT_ID: "i", GOOGLE_CLIENT_SECRET: "s" });
    expect(formTargetsFor(google)).toEqual(["https://accounts.google.com"]);
  });
});
