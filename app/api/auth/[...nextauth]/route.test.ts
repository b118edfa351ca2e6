import { randomInt } from "node:crypto";
import { NextRequest } from "next/server";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { CLIENT_ADDRESS_HEADER } from "@/lib/auth/client-address";
import { ensureDemoClients } from "@/lib/demo";
import { env } from "@/lib/env";
import { useRateLimits } from "@/lib/mail/testing";
import { GET, POST } from "./route";

// Auth.js reads the request's cookies through next/headers in places: here, none.
vi.mock("next/headers", () => ({
  headers: async () => new Headers(),
  cookies: async () => ({ get: () => undefined, getAll: () => [], has: () => false }),
}));

let restoreLimits: () => Promise<void>;

beforeAll(async () => {
  // Auth.js's demo sign-in client, as the demo services write it when they start.
  await ensureDemoClients(env().dataDir);
  restoreLimits = useRateLimits({});
});

afterAll(() => restoreLimits());

/** A request as our server hands it to Next: socket address stamped, X-Forwarded-For as sent. */
function authRequest(path: string, method: string, socket: string, forwardedFor: string) {
  return new NextRequest(`http://localhost:3000/api/auth/${path}`, {
    method,
    headers: {
      [CLIENT_ADDRESS_HEADER]: socket,
      "x-forwarded-for": forwardedFor,
      "content-type": "application/x-www-form-urlencoded",
    },
    ...(method === "POST" ? { body: "callbackUrl=%2F" } : {}),
  });
}

const testAddress = () => `198.51.100.${randomInt(1, 255)}`;

describe("Auth.js endpoints", () => {
  it("limits sign-in POSTs per socket address: 50 X-Forwarded-For values do not help", async () => {
    const socket = testAddress();
    const statuses: number[] = [];
    for (let i = 0; i < 50; i++) {
      const response = await POST(authRequest("signin/demo", "POST", socket, `203.0.113.${i}`));
      statuses.push(response.status);
    }
    const refused = statuses.filter((status) => status === 429);
    // The default limit is 10 a minute per address.
    expect(refused.length).toBe(40);
    expect(statuses.slice(10).every((status) => status === 429)).toBe(true);
    const another = await POST(authRequest("signin/demo", "POST", testAddress(), "203.0.113.1"));
    expect(another.status).not.toBe(429);
  });

  it("limits provider callbacks per socket address and sends the browser to the sign-in page", async () => {
    // One callback reaches Auth.js (and fails there: no provider is listening); the rest do not.
    const restore = useRateLimits({ signInCallback: { tokens: 1, window: "1 m" } });
    const socket = testAddress();
    const responses: Response[] = [];
    for (let i = 0; i < 5; i++) {
      responses.push(
        await GET(authRequest("callback/demo?code=x&state=y", "GET", socket, `203.0.113.${i}`)),
      );
    }
    const last = responses.at(-1);
    expect(last?.status).toBe(303);
    expect(last?.headers.get("location")).toMatch(/\/sign-in\?error=RateLimited$/);
    expect(Number(last?.headers.get("retry-after"))).toBeGreaterThan(0);
    await restore();
  });

  it("answers 404 to a provider that is not configured", async () => {
    const response = await POST(authRequest("signin/evil", "POST", testAddress(), "203.0.113.1"));
    expect(response.status).toBe(404);
  });
});
