import { randomInt } from "node:crypto";
import { sql } from "drizzle-orm";
import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { getDb } from "@/db";
import { auditEvents, dataRequests } from "@/db/schema";
import { CLIENT_ADDRESS_HEADER } from "@/lib/auth/client-address";
import { ensureDemoClients } from "@/lib/demo";
import { env } from "@/lib/env";
import { auditEventsOf } from "@/lib/testing/audit";
import { createOwner, createSession } from "@/lib/testing/factories";

// The activity log's IP address and user agent of events a person's request causes, where the
// call site once spread them beside `request` (stored as null) or left them out (sign-out).
// The Next request context is the one thing substituted: next/headers answers with the session
// cookie of a real session row and the address our server stamps. Files share one module
// cache, so this file starts from an empty one (a module loaded with the real next/headers
// keeps it).
const request = vi.hoisted(() => {
  vi.resetModules();
  return { headers: {} as Record<string, string> };
});
vi.mock("next/headers", () => ({
  headers: async () => new Headers(request.headers),
  cookies: async () => {
    const [name = "", value = ""] = (request.headers.cookie ?? "").split("=");
    const jar = new Map(request.headers.cookie ? [[name, { name, value }]] : []);
    return { get: (n: string) => jar.get(n), getAll: () => [...jar.values()], set: () => {} };
  },
}));
vi.mock("next/cache", () => ({ revalidatePath: () => {}, revalidateTag: () => {} }));

const { GET: exportActivity } = await import("./(admin)/activity/export/route");
const { GET: downloadReceipt } = await import("./(admin)/privacy/[requestId]/receipt/route");
const { GET: exportOwnData } = await import("./(dashboard)/profile/export/route");
const { signOut } = await import("@/lib/auth/config");

/** A person's browser behind our server: session cookie, stamped socket address, user agent. */
async function browserOf(userId: string) {
  const ip = `198.51.100.${randomInt(1, 255)}`;
  const userAgent = `vitest-browser-${randomInt(1_000_000)}`;
  request.headers = {
    cookie: `authjs.session-token=${await createSession(userId)}`,
    [CLIENT_ADDRESS_HEADER]: ip,
    "user-agent": userAgent,
    host: "localhost:3000",
  };
  return { ip, userAgent, headers: request.headers };
}

// Auth.js's configuration names the demo sign-in provider, whose client it reads from disk.
beforeAll(() => ensureDemoClients(env().dataDir));

afterEach(() => {
  request.headers = {};
});

describe("events of a person's request record where it came from", () => {
  it("exporting the activity log", async () => {
    const owner = await createOwner("export-ip");
    const browser = await browserOf(owner.user.id);
    const response = await exportActivity(
      new Request(new URL("/activity/export?format=jsonl", env().APP_URL), {
        headers: browser.headers,
      }),
    );
    expect(response.status).toBe(200);
    await response.text();
    const [event] = await auditEventsOf(owner.orgId, { action: "audit.exported" });
    expect(event).toMatchObject({ ip: browser.ip, userAgent: browser.userAgent });
  });

  it("exporting the activity log filtered by someone's address: the address stays in the file, never in the log", async () => {
    const owner = await createOwner("export-filter");
    const browser = await browserOf(owner.user.id);
    const address = "alice@example.com";
    const filters = [
      `q=${encodeURIComponent(address)}`,
      `actor=${encodeURIComponent(address)}&target=${encodeURIComponent(`invitation:${address}`)}`,
    ];
    for (const filter of filters) {
      const response = await exportActivity(
        new Request(new URL(`/activity/export?format=jsonl&${filter}`, env().APP_URL), {
          headers: browser.headers,
        }),
      );
      expect(response.status).toBe(200);
      // The downloaded file is the officer's own: its manifest names the filter as typed.
      const lines = (await response.text()).trim().split("\n");
      expect(JSON.parse(lines.at(-1) ?? "{}").filter).toMatchObject(
        filter.startsWith("q=") ? { q: address } : { actor: address },
      );
    }
    const db = await getDb();
    // No event's metadata (sealed into the chain, never erased) holds the address...
    const holding = await db
      .select({ id: auditEvents.id })
      .from(auditEvents)
      .where(sql`strpos(lower(${auditEvents.metadata}::text), ${address}) > 0`);
    expect(holding).toEqual([]);
    // ...the export's event records that a filter of that length was used.
    const events = await auditEventsOf(owner.orgId, { action: "audit.exported" });
    expect(events).toHaveLength(2);
    expect(events[0]?.metadata).toMatchObject({
      manifest: { filter: { q: "[17 characters, not recorded]" }, filtered: true },
    });
    // The file's manifest MAC covers the typed filter: kept out of the log, it confirms no guess.
    expect(JSON.stringify(events[0]?.metadata)).not.toContain('"mac"');
    expect(events[1]?.metadata).toMatchObject({
      manifest: {
        filter: {
          actor: "[17 characters, not recorded]",
          target: "invitation:[17 characters, not recorded]",
        },
      },
    });
  });

  it("downloading a data request's receipt", async () => {
    const owner = await createOwner("receipt-ip");
    const now = new Date();
    const [row] = await (await getDb())
      .insert(dataRequests)
      .values({
        orgId: owner.orgId,
        kind: "export",
        subjectEmail: "subject@example.test",
        requestedBy: owner.user.id,
        receivedAt: now,
        dueAt: new Date(now.getTime() + 30 * 86_400_000),
        status: "completed",
        completedAt: now,
        receipt: { kind: "export" },
      })
      .returning({ id: dataRequests.id });
    if (!row) throw new Error("data request insert returned nothing");
    const browser = await browserOf(owner.user.id);
    const response = await downloadReceipt(
      new Request(new URL(`/privacy/${row.id}/receipt`, env().APP_URL), {
        headers: browser.headers,
      }),
      { params: Promise.resolve({ requestId: row.id }) },
    );
    expect(response.status).toBe(200);
    const [event] = await auditEventsOf(owner.orgId, {
      action: "privacy.receipt_downloaded",
      targetId: row.id,
    });
    expect(event).toMatchObject({ ip: browser.ip, userAgent: browser.userAgent });
  });

  it("signing out with the app's Sign out button (Auth.js signOut in a server action)", async () => {
    const owner = await createOwner("signout-ip");
    const browser = await browserOf(owner.user.id);
    await signOut({ redirect: false });
    const [event] = await auditEventsOf(owner.orgId, { action: "auth.sign_out" });
    expect(event).toMatchObject({
      actorId: owner.user.id,
      ip: browser.ip,
      userAgent: browser.userAgent,
    });
  });
});

describe("downloads that stream a log or a person's data", () => {
  it("are limited per person: past the limit, 429 with Retry-After and nothing exported", async () => {
    const { useRateLimits } = await import("@/lib/mail/testing");
    const restore = useRateLimits({ dataExport: { tokens: 2, window: "1 h" } });
    try {
      const owner = await createOwner("export-limit");
      await browserOf(owner.user.id);
      const get = () =>
        exportActivity(new Request(new URL("/activity/export?format=jsonl", env().APP_URL)));
      for (let i = 0; i < 2; i++) {
        const response = await get();
        expect(response.status).toBe(200);
        await response.text();
      }
      const refused = await get();
      expect(refused.status).toBe(429);
      expect(Number(refused.headers.get("retry-after"))).toBeGreaterThan(0);
      expect(await refused.text()).toMatch(/Too many exports/);
      expect(await auditEventsOf(owner.orgId, { action: "audit.exported" })).toHaveLength(2);
    } finally {
      await restore();
    }
  });
});

describe("downloads started from another site's page", () => {
  it("are refused with 403 and audited; nothing is exported or recorded; our own pages still work", async () => {
    const owner = await createOwner("cross-site");
    const browser = await browserOf(owner.user.id);
    const activity = () =>
      exportActivity(new Request(new URL("/activity/export?format=csv", env().APP_URL)));

    for (const site of ["cross-site", "same-site"]) {
      request.headers = { ...browser.headers, "sec-fetch-site": site };
      const refusedLog = await activity();
      expect(refusedLog.status).toBe(403);
      expect(await refusedLog.text()).toMatch(/Mailwarden's own pages/);
      const refusedOwn = await exportOwnData();
      expect(refusedOwn.status).toBe(403);
    }
    expect(await auditEventsOf(owner.orgId, { action: "audit.exported" })).toHaveLength(0);
    const db = await getDb();
    const recorded = await db.select().from(dataRequests);
    expect(recorded.filter((r) => r.requestedBy === owner.user.id)).toHaveLength(0);
    const denied = await auditEventsOf(owner.orgId, { action: "access.denied" });
    expect(denied).toHaveLength(4);
    expect(denied.every((e) => (e.metadata as { reason?: string }).reason === "cross_site")).toBe(
      true,
    );

    for (const site of ["same-origin", "none"]) {
      request.headers = { ...browser.headers, "sec-fetch-site": site };
      const response = await activity();
      expect(response.status).toBe(200);
      await response.text();
    }
    expect(await auditEventsOf(owner.orgId, { action: "audit.exported" })).toHaveLength(2);
  });
});
