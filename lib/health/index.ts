import "server-only";
import { connect } from "node:net";
import { pingDb } from "@/db";
import { env } from "@/lib/env";
import { getMailProvider } from "@/lib/oauth/providers";
import { limitStoreStatus } from "@/lib/ratelimit/runtime";

// What this instance depends on, each checked live. A dependency that requests need (the
// database, the rate-limit store: every limit fails closed without it; the demo services in
// demo mode: sign-in and sending go through them) makes the instance unhealthy, so a load
// balancer stops sending it traffic and an administrator sees which one is down.

export type Dependency = {
  name: "database" | "rateLimitStore" | "demoProvider" | "demoSmtp";
  label: string;
  ok: boolean;
  /** Safe to show anyone: a driver or backend name, never a URL, host or credential. */
  detail: string;
};

export type Health = { ok: boolean; dependencies: Dependency[] };

const CHECK_TIMEOUT_MS = 2_000;

const BACKEND_LABELS = {
  upstash: "Upstash",
  redis: "Redis",
  memory: "in-process (this instance only)",
} as const;

async function demoProviderUp(issuer: string): Promise<boolean> {
  try {
    const response = await fetch(`${issuer}/.well-known/openid-configuration`, {
      signal: AbortSignal.timeout(CHECK_TIMEOUT_MS),
      cache: "no-store",
    });
    await response.body?.cancel();
    return response.ok;
  } catch {
    return false;
  }
}

/** A TCP connect only: the demo SMTP server's TLS greeting is not waited for. */
function portOpen(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(CHECK_TIMEOUT_MS, () => done(false));
    socket.once("connect", () => done(true));
    socket.once("error", () => done(false));
  });
}

/** Where the demo services listen; null outside demo mode. */
export type DemoTargets = { issuer: string; smtpHost: string; smtpPort: number } | null;

/** The demo provider the app really talks to (its client file is written when it starts). */
function demoTargets(): DemoTargets {
  const e = env();
  if (!e.isDemo) return null;
  const demo = getMailProvider("demo");
  if (!demo) return { issuer: e.demoIssuer, smtpHost: "127.0.0.1", smtpPort: e.DEMO_SMTP_PORT };
  return { issuer: demo.issuer, smtpHost: demo.smtp.host, smtpPort: demo.smtp.port };
}

export async function checkHealth(demo: DemoTargets = demoTargets()): Promise<Health> {
  const [database, store, provider, smtp] = await Promise.all([
    pingDb(),
    limitStoreStatus(),
    demo ? demoProviderUp(demo.issuer) : null,
    demo ? portOpen(demo.smtpHost, demo.smtpPort) : null,
  ]);
  const dependencies: Dependency[] = [
    {
      name: "database",
      label: "Database",
      ok: database.ok,
      detail: database.ok ? (database.driver ?? "connected") : "does not answer",
    },
    {
      name: "rateLimitStore",
      label: "Rate-limit store",
      ok: store.ok,
      detail: store.ok
        ? BACKEND_LABELS[store.backend]
        : `${BACKEND_LABELS[store.backend]} does not answer`,
    },
  ];
  if (provider !== null) {
    dependencies.push({
      name: "demoProvider",
      label: "Demo OAuth provider",
      ok: provider,
      detail: provider ? "answers" : "does not answer",
    });
  }
  if (smtp !== null) {
    dependencies.push({
      name: "demoSmtp",
      label: "Demo SMTP server",
      ok: smtp,
      detail: smtp ? "accepts connections" : "does not accept connections",
    });
  }
  return { ok: dependencies.every((d) => d.ok), dependencies };
}
