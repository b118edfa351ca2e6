import { RateLimiterMemory } from "rate-limiter-flexible";
import { afterEach, describe, expect, it, vi } from "vitest";
import {
  createRateLimits,
  DEFAULT_LIMITS,
  type RateLimits,
  rateLimitedResponseHeaders,
  sendLimitNames,
} from "./index";

const opened: RateLimits[] = [];
const open = (config: Parameters<typeof createRateLimits>[0]) => {
  const limits = createRateLimits(config);
  opened.push(limits);
  return limits;
};
afterEach(async () => {
  await Promise.all(opened.splice(0).map((l) => l.close()));
  vi.restoreAllMocks();
});

describe("memory backend", () => {
  it("allows N then denies with a Retry-After of at least 1 s", async () => {
    const limits = open({ overrides: { signIn: { tokens: 3, window: "1 m" } } });
    expect(limits.backend).toBe("memory");
    const signIn = limits.get("signIn");
    const results = [];
    for (let i = 0; i < 4; i++) results.push(await signIn.limit("203.0.113.7"));
    expect(results.map((r) => r.success)).toEqual([true, true, true, false]);
    expect(results.map((r) => r.remaining)).toEqual([2, 1, 0, 0]);
    const denied = results[3];
    expect(denied?.limit).toBe(3);
    expect(denied?.retryAfterSeconds).toBeGreaterThanOrEqual(1);
    expect(denied?.retryAfterSeconds).toBeLessThanOrEqual(60);
    expect(denied?.resetAt).toBeGreaterThan(Date.now());
  });

  it("keeps identifiers and limit names independent", async () => {
    const limits = open({ overrides: { signIn: { tokens: 1, window: "1 h" } } });
    expect((await limits.get("signIn").limit("a")).success).toBe(true);
    expect((await limits.get("signIn").limit("a")).success).toBe(false);
    expect((await limits.get("signIn").limit("b")).success).toBe(true);
    const callback = await limits.get("oauthCallback").limit("a");
    expect(callback).toMatchObject({ success: true, limit: DEFAULT_LIMITS.oauthCallback.tokens });
  });

  it("charges a cost (e.g. recipients) against the limit", async () => {
    const limits = open({ overrides: { sendMailboxDayMicrosoft: { tokens: 10, window: "1 d" } } });
    const day = limits.get(sendLimitNames("microsoft").day);
    expect(await day.limit("mbx", 7)).toMatchObject({ success: true, remaining: 3 });
    expect((await day.limit("mbx", 4)).success).toBe(false);
    await expect(day.limit("mbx", 0)).rejects.toThrow(RangeError);
  });

  it("limitAll counts every limit or none, and a cost larger than what is left not at all", async () => {
    const { minute, day } = sendLimitNames("microsoft");
    const limits = open({
      overrides: {
        [minute]: { tokens: 2, window: "1 h" },
        [day]: { tokens: 11, window: "1 d" },
      },
    });
    const both = (cost: number) =>
      limits.limitAll([
        { name: minute, identifier: "mbx" },
        { name: day, identifier: "mbx", cost },
      ]);
    expect(await both(7)).toBeNull();
    // A cost of 5 with 4 left is refused: neither the minute nor the day counts anything.
    expect(await both(5)).toMatchObject({
      name: day,
      identifier: "mbx",
      result: { success: false, remaining: 4 },
    });
    expect(await both(3)).toBeNull();
    // The minute is spent now: refused by it, the day keeps its last unit.
    expect(await both(1)).toMatchObject({ name: minute, result: { success: false } });
    expect(await limits.get(day).limit("mbx")).toMatchObject({ success: true, remaining: 0 });
    await expect(both(0)).rejects.toThrow(RangeError);
    await expect(limits.limitAll([])).resolves.toBeNull();
    await expect(
      limits.limitAll([
        { name: day, identifier: "mbx" },
        { name: day, identifier: "mbx" },
      ]),
    ).rejects.toThrow(/twice/);
  });

  it("limitAll: a refused call's counts never refuse another call that fits", async () => {
    const { minute, day } = sendLimitNames("microsoft");
    const limits = open({
      overrides: { [minute]: { tokens: 10, window: "1 h" }, [day]: { tokens: 25, window: "1 d" } },
    });
    const both = (cost: number) =>
      limits.limitAll([
        { name: minute, identifier: "mbx" },
        { name: day, identifier: "mbx", cost },
      ]);
    const [tooMany, fits] = await Promise.all([both(30), both(10)]);
    expect(tooMany).toMatchObject({ name: day, result: { remaining: 25 } });
    expect(fits).toBeNull();
  });

  it("limitAll gives nothing back in a window's last second (it could land in the next one)", async () => {
    const reward = vi.spyOn(RateLimiterMemory.prototype, "reward");
    const limits = open({
      overrides: {
        signIn: { tokens: 1, window: "1 s" },
        signInCallback: { tokens: 1, window: "1 h" },
      },
    });
    expect((await limits.get("signInCallback").limit("b")).success).toBe(true);
    const refused = await limits.limitAll([
      { name: "signIn", identifier: "b" },
      { name: "signInCallback", identifier: "b" },
    ]);
    expect(refused?.name).toBe("signInCallback");
    // A one-second window is always in its last second: only the refused hour's cost goes back.
    expect(reward.mock.calls).toEqual([["b", 1]]);
  });

  it("the route's per-mailbox minute limits and the providers' pace are one setting", async () => {
    const { parseEnv } = await import("@/lib/env");
    const { sendMinuteLimits } = await import("./runtime");
    const { buildMicrosoftProvider } = await import("@/lib/oauth/providers");
    expect(sendMinuteLimits(parseEnv({ SMTP_PER_MINUTE_MICROSOFT: "12" }))).toEqual({
      sendMailboxMinuteMicrosoft: { tokens: 12, window: "1 m" },
      sendMailboxMinuteGoogle: { tokens: 60, window: "1 m" },
      sendMailboxMinuteDemo: { tokens: 600, window: "1 m" },
    });
    const microsoft = buildMicrosoftProvider({
      clientId: "c",
      clientSecret: "s",
      tenant: "common",
    });
    expect(microsoft.smtp).toMatchObject({ maxConnections: 3, messagesPerMinute: 30 });
    expect(DEFAULT_LIMITS.sendMailboxMinuteMicrosoft.tokens).toBe(microsoft.smtp.messagesPerMinute);
  });

  it("uses the defaults and rejects bad overrides", () => {
    expect(DEFAULT_LIMITS.sendMailboxMinuteMicrosoft).toEqual({ tokens: 30, window: "1 m" });
    expect(sendLimitNames("google")).toEqual({
      minute: "sendMailboxMinuteGoogle",
      day: "sendMailboxDayGoogle",
    });
    expect(() => createRateLimits({ overrides: { signIn: { tokens: 0, window: "1 m" } } })).toThrow(
      /tokens/,
    );
    expect(() =>
      createRateLimits({ overrides: { signIn: { tokens: 5, window: "soon" } } }),
    ).toThrow(/window/);
  });
});

describe("upstash backend", () => {
  it("is chosen when configured and makes no request when created", () => {
    const fetchSpy = vi.spyOn(globalThis, "fetch");
    const limits = open({
      upstash: { url: "https://example.upstash.io", token: "token" },
      redisUrl: "redis://127.0.0.1:6379", // upstash wins
    });
    expect(limits.backend).toBe("upstash");
    expect(typeof limits.get("apiKey").limit).toBe("function");
    expect(fetchSpy).not.toHaveBeenCalled();
  });
});

describe("fail closed", () => {
  it("denies when Redis cannot be reached, without logging the URL or password", async () => {
    const lines: string[] = [];
    const limits = open({
      redisUrl: "redis://user:s3cret-pw@127.0.0.1:1",
      timeoutMs: 1_000,
      log: (line) => lines.push(line),
    });
    expect(limits.backend).toBe("redis");
    const started = Date.now();
    const result = await limits.get("signIn").limit("203.0.113.7");
    expect(Date.now() - started).toBeLessThan(1_500);
    expect(result).toMatchObject({ success: false, remaining: 0, retryAfterSeconds: 30 });
    expect(result.limit).toBe(DEFAULT_LIMITS.signIn.tokens);
    expect(lines.length).toBeGreaterThanOrEqual(1);
    for (const line of lines) {
      expect(line).not.toMatch(/s3cret|user|redis:\/\/|127\.0\.0\.1/);
    }
    // A second failure within 10 s is counted, not logged again.
    await limits.get("signIn").limit("203.0.113.7");
    expect(lines.length).toBe(1);
  });

  it("limitAll is refused as unavailable, in the name of its first limit, when Redis cannot be reached", async () => {
    const limits = open({ redisUrl: "redis://127.0.0.1:1", timeoutMs: 500, log: () => {} });
    const refused = await limits.limitAll([
      { name: "sendMailboxMinuteGoogle", identifier: "mailbox:m" },
      { name: "sendMailboxDayGoogle", identifier: "mailbox:m" },
    ]);
    expect(refused).toMatchObject({
      name: "sendMailboxMinuteGoogle",
      identifier: "mailbox:m",
      result: { success: false, unavailable: true, retryAfterSeconds: 30 },
    });
  });
});

describe("rateLimitedResponseHeaders", () => {
  it("gives Retry-After and RateLimit-* as strings", () => {
    const headers = rateLimitedResponseHeaders({
      success: false,
      limit: 10,
      remaining: 0,
      resetAt: Date.now() + 42_000,
      retryAfterSeconds: 42,
    });
    expect(headers).toEqual({
      "Retry-After": "42",
      "RateLimit-Limit": "10",
      "RateLimit-Remaining": "0",
      "RateLimit-Reset": expect.stringMatching(/^4[12]$/),
    });
  });
});
