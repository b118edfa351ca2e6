import { createHash, randomUUID } from "node:crypto";
import { Redis } from "ioredis";
import { afterAll, describe, expect, it, vi } from "vitest";
import { createRateLimits, type LimitOverrides, type RateLimits } from "./index";
import { upstashCompatibleRedis } from "./ioredis-adapter";

// Runs against a real Redis only when REDIS_URL is set (CI: redis://127.0.0.1:6379).
const url = process.env.REDIS_URL;

describe.skipIf(!url)("redis backend (real Redis)", () => {
  const prefix = `mailwarden-test:${randomUUID()}`;
  // "1 h" windows: a sliding window crossing its boundary mid-test would blur the counts.
  const overrides: LimitOverrides = {
    signIn: { tokens: 5, window: "1 h" },
    apiKey: { tokens: 10, window: "1 h" },
    sendMailboxMinuteMicrosoft: { tokens: 2, window: "1 h" },
    sendMailboxDayMicrosoft: { tokens: 10, window: "1 h" },
  };
  const opened: RateLimits[] = [];
  const open = () => {
    const limits = createRateLimits({ redisUrl: url, prefix, overrides });
    opened.push(limits);
    return limits;
  };
  const raw = new Redis(url as string);

  afterAll(async () => {
    await Promise.all(opened.map((l) => l.close()));
    const keys = await raw.keys(`${prefix}:*`);
    if (keys.length) await raw.del(...keys);
    await raw.quit();
  });

  it("Redis itself rejects Upstash's script flag (why the adapter exists)", async () => {
    await expect(raw.eval("#!lua flags=allow-key-locking\nreturn 1", 0)).rejects.toThrow();
  });

  it("adapter loads a script once through eval, then runs it by hash", async () => {
    const client = new Redis(url as string);
    const evalSpy = vi.spyOn(client, "eval");
    const evalshaSpy = vi.spyOn(client, "evalsha");
    const adapter = upstashCompatibleRedis(client);
    const script = `#!lua flags=allow-key-locking\nreturn ARGV[1] .. "${randomUUID()}"`;
    const upstashHash = createHash("sha1").update(script).digest("hex");
    await expect(adapter.evalsha(upstashHash, [], ["a"])).rejects.toThrow(/NOSCRIPT/);
    expect(await adapter.eval(script, [], ["b"])).toMatch(/^b/);
    expect(await adapter.evalsha(upstashHash, [], ["c"])).toMatch(/^c/);
    expect(evalSpy).toHaveBeenCalledTimes(1);
    expect(evalshaSpy).toHaveBeenCalledTimes(1);
    await client.quit();
  });

  it("allows N then denies with a Retry-After of at least 1 s", async () => {
    const limits = open();
    expect(limits.backend).toBe("redis");
    const signIn = limits.get("signIn");
    const results = [];
    for (let i = 0; i < 6; i++) results.push(await signIn.limit("198.51.100.1"));
    expect(results.map((r) => r.success)).toEqual([true, true, true, true, true, false]);
    expect(results.map((r) => r.remaining)).toEqual([4, 3, 2, 1, 0, 0]);
    expect(results[5]?.retryAfterSeconds).toBeGreaterThanOrEqual(1);
    expect(results[5]?.retryAfterSeconds).toBeLessThanOrEqual(3600);
    expect((await signIn.limit("198.51.100.2")).success).toBe(true);
    expect(await raw.keys(`${prefix}:signIn:198.51.100.1:*`)).toHaveLength(1);
  });

  it("shares the count between two app instances", async () => {
    const a = open().get("signIn");
    const b = open().get("signIn");
    const id = "shared-identifier";
    for (let i = 0; i < 3; i++) expect((await a.limit(id)).success).toBe(true);
    for (let i = 0; i < 2; i++) expect((await b.limit(id)).success).toBe(true);
    expect((await a.limit(id)).success).toBe(false);
    expect((await b.limit(id)).success).toBe(false);
  });

  it("limitAll counts every limit or none, for every instance, on the library's own keys", async () => {
    const a = open();
    const b = open();
    const id = `all-${randomUUID()}`;
    const both = (limits: RateLimits, cost: number) =>
      limits.limitAll([
        { name: "sendMailboxMinuteMicrosoft", identifier: id },
        { name: "sendMailboxDayMicrosoft", identifier: id, cost },
      ]);
    expect(await both(a, 7)).toBeNull();
    // 3 left of the day's 10: a cost of 4 is refused whole (the library's own script would have
    // counted it), and the minute keeps its unit.
    expect(await both(b, 4)).toMatchObject({
      name: "sendMailboxDayMicrosoft",
      identifier: id,
      result: { success: false, remaining: 3 },
    });
    // The library's limiter over the same keys sees what limitAll counted.
    expect(await a.get("sendMailboxDayMicrosoft").limit(id, 3)).toMatchObject({
      success: true,
      remaining: 0,
    });
    expect((await b.get("sendMailboxMinuteMicrosoft").limit(id)).success).toBe(true);
    expect(await both(a, 1)).toMatchObject({ name: "sendMailboxMinuteMicrosoft" });
  });

  it("limitAll weighs the previous window as the library does, at the same instant", async () => {
    const limits = open();
    const id = `all-previous-${randomUUID()}`;
    const hour = 3_600_000;
    const window = Math.floor(Date.now() / hour);
    // A quarter into this window: 9 counted in the previous one weigh floor(0.75 * 9) = 6.
    vi.spyOn(Date, "now").mockReturnValue(window * hour + hour / 4);
    try {
      await raw.set(`${prefix}:sendMailboxDayMicrosoft:${id}:${window - 1}`, 9);
      const both = (cost: number) =>
        limits.limitAll([
          { name: "sendMailboxMinuteMicrosoft", identifier: id },
          { name: "sendMailboxDayMicrosoft", identifier: id, cost },
        ]);
      expect(await both(5)).toMatchObject({ result: { success: false, remaining: 4 } });
      const day = limits.get("sendMailboxDayMicrosoft");
      expect(await day.limit(id, 3)).toMatchObject({ success: true, remaining: 1 });
      expect(await both(2)).toMatchObject({ result: { success: false, remaining: 1 } });
      expect(await both(1)).toBeNull();
      expect((await day.limit(id)).success).toBe(false);
    } finally {
      vi.restoreAllMocks();
    }
  });

  it("limitAll passes exactly the limit out of 50 concurrent calls, and counts the other limit as much", async () => {
    const limits = open();
    const id = `all-concurrent-${randomUUID()}`;
    const results = await Promise.all(
      Array.from({ length: 50 }, () =>
        limits.limitAll([
          { name: "signIn", identifier: id },
          { name: "sendMailboxDayMicrosoft", identifier: id },
        ]),
      ),
    );
    expect(results.filter((r) => r === null)).toHaveLength(5);
    // 10 in the window, 5 counted by limitAll, 1 now.
    expect(await limits.get("sendMailboxDayMicrosoft").limit(id)).toMatchObject({
      success: true,
      remaining: 4,
    });
  });

  it("allows exactly the limit out of 50 concurrent calls", async () => {
    const apiKey = open().get("apiKey");
    const results = await Promise.all(Array.from({ length: 50 }, () => apiKey.limit("key-1")));
    expect(results.filter((r) => r.success)).toHaveLength(10);
  });
});
