import { randomInt } from "node:crypto";
import { NextRequest } from "next/server";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { CLIENT_ADDRESS_HEADER } from "@/lib/auth/client-address";
import { ensureDemoClients } from "@/lib/demo";
import { env } from "@/lib/env";
import { clearOfMinuteTurn, useRateLimits } from "@/lib/mail/testing";
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

const CLOSED_REDIS_URL = "redis://127.0.0.1:6390";

const testAddress = () => `198.51.100.${randomInt(1, 255)}`;

describe("Auth.js endpoints", () => {
  it("limits sign-in POSTs per socket address: 50 X-Forwarded-For values do not help", async () => {
    await clearOfMinuteTurn();
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
    await clearOfMinuteTurn();
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

  it("with the limit store unreachable: 503 'temporarily unavailable' with Retry-After, not 429", async () => {
    // A real Redis client pointed at a port nobody listens on: the store does not answer.
    const restore = useRateLimits({}, { redisUrl: CLOSED_REDIS_URL });
    try {
      const post = await POST(authRequest("signin/demo", "POST", testAddress(), "203.0.113.1"));
      expect(post.status).toBe(503);
      expect(await post.text()).toMatch(/temporarily unavailable/);
      expect(Number(post.headers.get("retry-after"))).toBeGreaterThan(0);
      const callback = await GET(
        authRequest("callback/demo?code=x&state=y", "GET", testAddress(), "203.0.113.1"),
      );
      expect(callback.status).toBe(303);
      expect(callback.headers.get("location")).toMatch(/\/sign-in\?error=Unavailable$/);
    } finally {
      await restore();
    }
  });

  it("answers 404 to a provider that is not configured", async () => {
    const response = await POST(authRequest("signin/evil", "POST", testAddress(), "203.0.113.1"));
    expect(response.status).toBe(404);
  });
});
