import { randomUUID } from "node:crypto";
import { and, eq, inArray, sql } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { POST } from "@/app/api/v1/messages/route";
import { getDb } from "@/db";
import { auditEvents } from "@/db/schema";
import { useRefusalCaps } from "@/lib/audit/refusals";
import { addressLimitKey } from "@/lib/auth/client-address";
import { revokeApiKey } from "@/lib/mail/api-keys";
import { makeApiKey, useRateLimits } from "@/lib/mail/testing";
import { rateLimits } from "@/lib/ratelimit/runtime";
import { memberContext } from "@/lib/testing/context";
import { createOwner } from "@/lib/testing/factories";

function post(token: string, ip: string) {
  return POST(
    new Request("http://localhost/api/v1/messages", {
      method: "POST",
      headers: {
        authorization: `Bearer ${token}`,
        "content-type": "application/json",
        // The address our front server stamps from the socket (lib/auth/client-address.ts).
        "x-mailwarden-client-ip": ip,
      },
      body: "{}",
    }),
  );
}

async function eventsFrom(ip: string | string[], action: string) {
  const db = await getDb();
  const from = Array.isArray(ip) ? inArray(auditEvents.ip, ip) : eq(auditEvents.ip, ip);
  return db
    .select()
    .from(auditEvents)
    .where(and(from, eq(auditEvents.action, action)));
}

/** The rate-limit refusals audited in an organisation's log. */
async function rateLimitEventsOf(orgId: string) {
  return (await getDb())
    .select()
    .from(auditEvents)
    .where(and(eq(auditEvents.chain, orgId), eq(auditEvents.action, "rate_limit.refused")));
}

/** A documentation-range IPv6 /64 no other test uses (sampling counts a /64 as one client). */
const uniquePrefix = () => `2001:db8:${randomUUID().slice(0, 4)}:${randomUUID().slice(0, 4)}`;
const uniqueAddress = () => `${uniquePrefix()}::1`;

const fakeToken = () => `mwk_${"0".repeat(4)}${randomUUID().slice(0, 8)}_${"A".repeat(43)}`;

describe("refused API keys are audited, sampled per address", () => {
  it("an unknown key: one system event per address however many tries", {
    timeout: 120_000,
  }, async () => {
    const ip = uniqueAddress();
    for (let i = 0; i < 5; i++) expect((await post(fakeToken(), ip)).status).toBe(401);
    const events = await eventsFrom(ip, "api_key.refused");
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ chain: "", orgId: null, outcome: "denied" });
    expect(events[0]?.metadata).toMatchObject({ reason: "unknown" });
    // The secret part never reaches the log.
    expect(JSON.stringify(events[0])).not.toContain("A".repeat(43));
  });

  it("addresses rotated within one IPv6 /64 are one client: one event for all of them", {
    timeout: 120_000,
  }, async () => {
    const prefix = uniquePrefix();
    const addresses = Array.from({ length: 20 }, (_, i) => `${prefix}::${(i + 1).toString(16)}`);
    for (const ip of addresses) expect((await post(fakeToken(), ip)).status).toBe(401);
    const events = await eventsFrom(addresses, "api_key.refused");
    expect(events).toHaveLength(1);
  });

  it("past the process's cap, a window's refusals from any address are only counted", {
    timeout: 120_000,
  }, async () => {
    useRefusalCaps(2);
    try {
      const addresses = Array.from({ length: 4 }, uniqueAddress);
      for (const ip of addresses) expect((await post(fakeToken(), ip)).status).toBe(401);
      const events = await eventsFrom(addresses, "api_key.refused");
      expect(events.map((e) => e.ip).sort()).toEqual(addresses.slice(0, 2).sort());
    } finally {
      useRefusalCaps(undefined);
    }
  });

  it("another instance wrote this client's event this minute: this one writes none", {
    timeout: 120_000,
  }, async () => {
    const ip = uniqueAddress();
    // What another instance's refusal of this client left in the shared store.
    expect(
      (await rateLimits().get("auditRefusedKeyClient").limit(addressLimitKey(ip))).success,
    ).toBe(true);
    expect((await post(fakeToken(), ip)).status).toBe(401);
    expect(await eventsFrom(ip, "api_key.refused")).toHaveLength(0);
    // The sampling's own refusal is not an event either. Audits of refusals are written without
    // waiting for them: a refusal audited after it, once written, says the first had its turn.
    const control = await createOwner();
    const limiter = rateLimits().get("oauthStart");
    for (let i = 0; i < 11; i++) await limiter.limit(`org:${control.orgId}`);
    await expect
      .poll(async () => (await rateLimitEventsOf(control.orgId)).length, { timeout: 10_000 })
      .toBe(1);
    const sampled = await (await getDb())
      .select({ id: auditEvents.id })
      .from(auditEvents)
      .where(
        and(
          eq(auditEvents.action, "rate_limit.refused"),
          sql`${auditEvents.metadata}->>'limit' like 'audit%'`,
        ),
      );
    expect(sampled).toHaveLength(0);
  });

  it("the instances together reach the cap: past it no instance writes, nor asks the store", {
    timeout: 120_000,
  }, async () => {
    const restore = useRateLimits({ auditRefusedKeys: { tokens: 1, window: "1 m" } });
    try {
      // Another instance's event took the cap.
      expect((await rateLimits().get("auditRefusedKeys").limit("all")).success).toBe(true);
      const ip = uniqueAddress();
      expect((await post(fakeToken(), ip)).status).toBe(401);
      expect(await eventsFrom(ip, "api_key.refused")).toHaveLength(0);
      // The rest of this process's minute the store is not asked (each new address would cost a
      // round trip and a key there): a store with room left would not be heard either.
      const fresh = useRateLimits({});
      const next = uniqueAddress();
      expect((await post(fakeToken(), next)).status).toBe(401);
      expect(await eventsFrom(next, "api_key.refused")).toHaveLength(0);
      await fresh();
    } finally {
      await restore();
      // The instances' cap filled this process's window too: a new window for the next tests.
      useRefusalCaps(undefined);
    }
  });

  it("with the store down, this process's own sampling decides: one event", {
    timeout: 120_000,
  }, async () => {
    const restore = useRateLimits({}, { redisUrl: "redis://127.0.0.1:9" });
    try {
      const ip = uniqueAddress();
      for (let i = 0; i < 3; i++) expect((await post(fakeToken(), ip)).status).toBe(401);
      expect(await eventsFrom(ip, "api_key.refused")).toHaveLength(1);
    } finally {
      await restore();
    }
  });

  it("a revoked key: its organisation's log, naming the key", async () => {
    const owner = await createOwner();
    const created = await makeApiKey(owner);
    await revokeApiKey({
      ctx: memberContext(owner.orgId, owner.user, "owner"),
      keyId: created.key.id,
    });
    const ip = uniqueAddress();
    expect((await post(created.token, ip)).status).toBe(401);
    const events = await eventsFrom(ip, "api_key.refused");
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({
      chain: owner.orgId,
      targetType: "api_key",
      targetId: created.key.id,
    });
    expect(events[0]?.metadata).toMatchObject({ reason: "revoked" });
  });
});

describe("rate-limit refusals are audited once per limiter key and window", () => {
  it("thirty tries against a limit of ten make one event, in the organisation's log", async () => {
    const owner = await createOwner();
    const limiter = rateLimits().get("oauthStart");
    for (let i = 0; i < 30; i++) await limiter.limit(`org:${owner.orgId}`);
    const find = () => rateLimitEventsOf(owner.orgId);
    await expect.poll(async () => (await find()).length, { timeout: 10_000 }).toBeGreaterThan(0);
    // Written without waiting for it: give stragglers a moment, then count.
    await new Promise((r) => setTimeout(r, 500));
    const events = await find();
    expect(events).toHaveLength(1);
    expect(events[0]?.metadata).toMatchObject({ limit: "oauthStart", scope: `org:${owner.orgId}` });
  });

  /** System-log refusals of `limit` since `since` (an address names only its kind there). */
  async function systemRefusalsOf(limit: string, since: Date) {
    return (await getDb())
      .select()
      .from(auditEvents)
      .where(
        and(
          eq(auditEvents.action, "rate_limit.refused"),
          sql`${auditEvents.orgId} is null`,
          sql`${auditEvents.metadata}->>'limit' = ${limit}`,
          sql`${auditEvents.occurredAt} >= ${since.toISOString()}`,
        ),
      );
  }

  /**
   * Refuses `signInCallback` (1 a minute here) once for each address, then an organisation's
   * `oauthStart`: audits of refusals are written without waiting for them, and the last one's
   * event, once written, says the ones before had their turn.
   */
  async function refuseAddressesThenOrg(addresses: string[]) {
    const limits = rateLimits();
    for (const ip of addresses) {
      for (let i = 0; i < 2; i++) await limits.get("signInCallback").limit(addressLimitKey(ip));
    }
    const control = await createOwner();
    for (let i = 0; i < 11; i++) await limits.get("oauthStart").limit(`org:${control.orgId}`);
    await expect
      .poll(async () => (await rateLimitEventsOf(control.orgId)).length, { timeout: 10_000 })
      .toBe(1);
  }

  it("past the process's cap, refusals keyed by an address are only counted; an organisation's and a person's are not capped", {
    timeout: 120_000,
  }, async () => {
    const since = new Date();
    const restore = useRateLimits(
      { signInCallback: { tokens: 1, window: "1 m" }, testSend: { tokens: 1, window: "1 m" } },
      { audited: true },
    );
    useRefusalCaps(2);
    try {
      await refuseAddressesThenOrg(Array.from({ length: 4 }, uniqueAddress));
      expect(await systemRefusalsOf("signInCallback", since)).toHaveLength(2);
      // A person's refusals are not capped (people are bounded by accounts): still written.
      const person = `user:${randomUUID()}`;
      for (let i = 0; i < 2; i++) await rateLimits().get("testSend").limit(person);
      await expect
        .poll(async () => (await systemRefusalsOf("testSend", since)).length, { timeout: 10_000 })
        .toBe(1);
    } finally {
      useRefusalCaps(undefined);
      await restore();
    }
  });

  it("a refusal the cap held back is counted in its address's next event", {
    timeout: 120_000,
  }, async () => {
    const since = new Date();
    const restore = useRateLimits(
      { signInCallback: { tokens: 1, window: "2 s" } },
      { audited: true },
    );
    const limiter = rateLimits().get("signInCallback");
    const key = addressLimitKey(uniqueAddress());
    /** One allowed call, then `refusals` refused ones. */
    const burst = async (refusals: number) => {
      expect((await limiter.limit(key)).success).toBe(true);
      for (let i = 0; i < refusals; i++) expect((await limiter.limit(key)).success).toBe(false);
    };
    const nextWindow = () => new Promise((resolve) => setTimeout(resolve, 2_200));
    useRefusalCaps(1);
    try {
      await burst(2); // an event, then one refusal its sampling counts
      await nextWindow();
      await burst(1); // sampled, standing for the one before, but past the cap of 1: counted
      useRefusalCaps(undefined);
      await nextWindow();
      await burst(1); // sampled: its event stands for the refusal the cap held back's count
      await expect
        .poll(async () => (await systemRefusalsOf("signInCallback", since)).length, {
          timeout: 10_000,
        })
        .toBe(2);
      const events = await systemRefusalsOf("signInCallback", since);
      const counts = events.map(
        (e) => (e.metadata as { suppressedBefore: number }).suppressedBefore,
      );
      expect(counts.sort()).toEqual([0, 1]);
    } finally {
      useRefusalCaps(undefined);
      await restore();
    }
  });

  it("the instances together reach the cap: past it no instance writes one", {
    timeout: 120_000,
  }, async () => {
    const since = new Date();
    const restore = useRateLimits(
      {
        signInCallback: { tokens: 1, window: "1 m" },
        auditRateLimitRefusals: { tokens: 1, window: "1 m" },
      },
      { audited: true },
    );
    try {
      // Another instance's event took the cap.
      expect((await rateLimits().get("auditRateLimitRefusals").limit("all")).success).toBe(true);
      await refuseAddressesThenOrg([uniqueAddress()]);
      expect(await systemRefusalsOf("signInCallback", since)).toHaveLength(0);
    } finally {
      await restore();
      // The instances' cap filled this process's window too: a new window for the next tests.
      useRefusalCaps(undefined);
    }
  });
});
