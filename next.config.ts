import type { NextConfig } from "next";

const config: NextConfig = {
  poweredByHeader: false,
  // Native-ish and stateful server packages stay out of the bundle (PGlite breaks when bundled).
  serverExternalPackages: [
    "@electric-sql/pglite",
    "pg",
    "pg-boss",
    "nodemailer",
    "smtp-server",
    "oidc-provider",
    "mailparser",
    "ioredis",
    // Large X.509 libraries that only the demo services use, to create their certificate.
    "selfsigned",
    // Plain Node packages on the sign-in page's path (its rate limit): required from
    // node_modules at run time instead of compiled, which shortens the first compile of `next dev`.
    "@upstash/ratelimit",
    "@upstash/redis",
    "rate-limiter-flexible",
  ],
  experimental: { authInterrupts: true },
  // OAuth callbacks carry one-time codes in the query string: keep them out of the request log.
  logging: { incomingRequests: { ignore: [/^\/api\/(auth|oauth)\//] } },
  // `npm run typecheck` (tsc --noEmit) checks the whole project once; the build need not repeat it.
  typescript: { ignoreBuildErrors: true },
  async headers() {
    return [
      {
        source: "/:path*",
        headers: [
          { key: "X-Frame-Options", value: "DENY" },
          { key: "X-Content-Type-Options", value: "nosniff" },
          { key: "Referrer-Policy", value: "strict-origin-when-cross-origin" },
          { key: "Permissions-Policy", value: "camera=(), microphone=(), geolocation=()" },
        ],
      },
    ];
  },
};

export default config;
