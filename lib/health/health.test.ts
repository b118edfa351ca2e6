import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GET } from "@/app/api/health/route";
import {
  clearOfMinuteTurn,
  type SendTestbed,
  startSendTestbed,
  useRateLimits,
} from "@/lib/mail/testing";
import { createRateLimits } from "@/lib/ratelimit";
import {
  enforceRateLimit,
  LimitStoreUnavailableError,
  RateLimitedError,
} from "@/lib/ratelimit/runtime";
import { checkHealth } from "./index";

// A real Redis client pointed at a port nobody listens on: the store is down, not mocked.
const CLOSED_REDIS_URL = "redis://127.0.0.1:6390";

type HealthBody = {
  status: string;
  dependencies: Record<string, { ok: boolean; detail: string }>;
};

describe("the limiter with its store unreachable", () => {
  it("denies (fails closed) and marks the denial as the store's, not a limit's", async () => {
    const limits = createRateLimits({ redisUrl: CLOSED_REDIS_URL, log: () => {} });
    try {
      const result = await limits.get("signIn").limit("ip:198.51.100.7");
      expect(result.success).toBe(false);
      expect(result.unavailable).toBe(true);
      expect(result.retryAfterSeconds).toBeGreaterThanOrEqual(1);
      expect(await limits.ping()).toBe(false);
    } finally {
      await limits.close();
    }
  });

  it("enforceRateLimit throws LimitStoreUnavailableError, which reads 'temporarily unavailable'", async () => {
    const restore = useRateLimits({}, { redisUrl: CLOSED_REDIS_URL });
    try {
      const error = await enforceRateLimit("signIn", ["ip:198.51.100.8"]).catch((e) => e);
      expect(error).toBeInstanceOf(LimitStoreUnavailableError);
      expect(error).not.toBeInstanceOf(RateLimitedError);
      expect((error as Error).message).toMatch(/temporarily unavailable/);
    } finally {
      await restore();
    }
  });

  it("a real refusal is still RateLimitedError", async () => {
    await clearOfMinuteTurn();
    const restore = useRateLimits({ signIn: { tokens: 1, window: "1 m" } });
    try {
      await enforceRateLimit("signIn", ["ip:198.51.100.9"]);
      const error = await enforceRateLimit("signIn", ["ip:198.51.100.9"]).catch((e) => e);
      expect(error).toBeInstanceOf(RateLimitedError);
    } finally {
      await restore();
    }
  });
});

describe("health", () => {
  let bed: SendTestbed;
  beforeAll(async () => {
    bed = await startSendTestbed();
  });
  afterAll(() => bed?.close());

  it("every dependency answers: ok, each one named", async () => {
    const restore = useRateLimits({});
    try {
      const health = await checkHealth({
        issuer: bed.oauth.issuer,
        smtpHost: bed.endpoint.host,
        smtpPort: bed.endpoint.port,
      });
      expect(health.dependencies.map((d) => [d.name, d.ok])).toEqual([
        ["database", true],
        ["rateLimitStore", true],
        ["demoProvider", true],
        ["demoSmtp", true],
      ]);
      expect(health.ok).toBe(true);
    } finally {
      await restore();
    }
  });

  it("demo services down: not ok, naming them", async () => {
    const restore = useRateLimits({});
    try {
      const health = await checkHealth({
        issuer: "http://127.0.0.1:6391",
        smtpHost: "127.0.0.1",
        smtpPort: 6392,
      });
      expect(health.ok).toBe(false);
      expect(health.dependencies.filter((d) => !d.ok).map((d) => d.name)).toEqual([
        "demoProvider",
        "demoSmtp",
      ]);
    } finally {
      await restore();
    }
  });

  it("GET /api/health: 200 'ok' with the demo services the app uses (as registered)", async () => {
    const restore = useRateLimits({});
    try {
      const response = await GET();
      const body = (await response.json()) as HealthBody;
      expect(response.status).toBe(200);
      expect(body.status).toBe("ok");
      expect(Object.keys(body.dependencies)).toEqual([
        "database",
        "rateLimitStore",
        "demoProvider",
        "demoSmtp",
      ]);
    } finally {
      await restore();
    }
  });

  it("GET /api/health: 503 'degraded' naming the rate-limit store when it is unreachable", async () => {
    const restore = useRateLimits({}, { redisUrl: CLOSED_REDIS_URL });
    try {
      const response = await GET();
      expect(response.status).toBe(503);
      expect(response.headers.get("retry-after")).toBeTruthy();
      const body = (await response.json()) as HealthBody;
      expect(body.status).toBe("degraded");
      expect(body.dependencies.rateLimitStore).toEqual({
        ok: false,
        detail: "Redis does not answer",
      });
      expect(body.dependencies.database?.ok).toBe(true);
      // No URL, host or port of the store is ever shown.
      expect(JSON.stringify(body)).not.toContain("6390");
    } finally {
      await restore();
    }
  });
});
