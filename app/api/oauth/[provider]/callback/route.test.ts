import { randomInt } from "node:crypto";
import { and, eq, sql } from "drizzle-orm";
import { NextRequest } from "next/server";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { getDb } from "@/db";
import { auditEvents } from "@/db/schema";
import { CLIENT_ADDRESS_HEADER } from "@/lib/auth/client-address";
import { ensureDemoClients } from "@/lib/demo";
import { env } from "@/lib/env";
import { useRateLimits } from "@/lib/mail/testing";
import { buildDemoProvider, registerMailProvider, resetMailProviders } from "@/lib/oauth/providers";
import { GET } from "./route";

// The route asks Auth.js for the session, which reads the request's cookies: here, none.
vi.mock("next/headers", () => ({
  headers: async () => new Headers(),
  cookies: async () => ({ get: () => undefined, getAll: () => [], has: () => false }),
}));

let restoreLimits: () => Promise<void>;

beforeAll(async () => {
  // Auth.js's demo sign-in client, as the demo services write it when they start.
  await ensureDemoClients(env().dataDir);
  restoreLimits = useRateLimits({});
  registerMailProvider(
    buildDemoProvider({
      clientId: "client",
      clientSecret: "secret",
      issuer: "http://localhost:9",
      smtpPort: 9,
    }),
  );
});

afterAll(async () => {
  resetMailProviders();
  await restoreLimits();
});

/** A callback as our server hands it to Next: socket address stamped, X-Forwarded-For as sent. */
function callback(provider: string, socket: string, forwardedFor: string) {
  const url = `http://localhost:3000/api/oauth/${provider}/callback?state=made-up&code=x`;
  const request = new NextRequest(url, {
    headers: { [CLIENT_ADDRESS_HEADER]: socket, "x-forwarded-for": forwardedFor },
  });
  return GET(request, { params: Promise.resolve({ provider }) });
}

async function callbackAuditRows(where: ReturnType<typeof and>) {
  const db = await getDb();
  const [row] = await db
    .select({ n: sql<number>`count(*)::int` })
    .from(auditEvents)
    .where(and(eq(auditEvents.action, "oauth.callback"), where));
  return row?.n ?? 0;
}

const testAddress = () => `198.51.100.${randomInt(1, 255)}`;

describe("GET /api/oauth/[provider]/callback from nobody signed in", () => {
  it("answers 404 for a provider that is not configured and audits nothing", async () => {
    const provider = `evil-${randomInt(1e9)}`;
    const response = await callback(provider, testAddress(), "203.0.113.1");
    expect(response.status).toBe(404);
    expect(await callbackAuditRows(sql`${auditEvents.metadata}->>'provider' = ${provider}`)).toBe(
      0,
    );
  });

  it("stops auditing refusals from one address past the limit, whatever X-Forwarded-For says", async () => {
    const socket = testAddress();
    const before = await callbackAuditRows(eq(auditEvents.ip, socket));
    const statuses: string[] = [];
    for (let i = 0; i < 40; i++) {
      const response = await callback("demo", socket, `203.0.113.${i + 1}`);
      expect(response.status).toBe(303);
      statuses.push(
        new URL(response.headers.get("location") ?? "").searchParams.get("reason") ?? "",
      );
    }
    // The first ten are refused and recorded; the other thirty are refused without a row.
    expect(statuses.slice(10).every((reason) => reason === "rate_limited")).toBe(true);
    expect((await callbackAuditRows(eq(auditEvents.ip, socket))) - before).toBe(10);
  });
});
