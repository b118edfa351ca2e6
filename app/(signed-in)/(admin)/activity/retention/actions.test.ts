import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { getDb } from "@/db";
import { getRetentionSettings } from "@/db/queries/organization-settings";
import { PAGE_ORG_FIELD } from "@/lib/auth/page-org";
import { ensureDemoClients } from "@/lib/demo";
import { env } from "@/lib/env";
import { auditEventsOf } from "@/lib/testing/audit";
import { createMember, createOwner, createSession } from "@/lib/testing/factories";

// The Next request context is the one thing substituted: next/headers answers with the session
// cookie of a real session row, which the real auth() looks up. Files share one module cache,
// so this file starts from an empty one (a module loaded with the real next/headers keeps it).
const request = vi.hoisted(() => {
  vi.resetModules();
  return { cookie: "", orgId: "" };
});
vi.mock("next/headers", () => ({
  headers: async () =>
    new Headers({ cookie: request.cookie, "user-agent": "vitest-retention-settings" }),
  cookies: async () => {
    const [name = "", value = ""] = request.cookie.split("=");
    const jar = new Map(request.cookie ? [[name, { name, value }]] : []);
    return { get: (n: string) => jar.get(n), getAll: () => [...jar.values()] };
  },
}));
vi.mock("next/cache", () => ({ revalidatePath: () => {}, revalidateTag: () => {} }));

const { setRetentionAction } = await import("./actions");

/** Signed in with `orgId` current, the organisation every form's page was rendered for. */
async function signIn(userId: string, orgId: string) {
  request.cookie = `authjs.session-token=${await createSession(userId)}`;
  request.orgId = orgId;
}

function form(fields: Record<string, string>) {
  const data = new FormData();
  data.set(PAGE_ORG_FIELD, request.orgId);
  for (const [name, value] of Object.entries(fields)) data.set(name, value);
  return data;
}

// Auth.js's configuration names the demo sign-in provider, whose client it reads from disk.
beforeAll(() => ensureDemoClients(env().dataDir));

afterEach(() => {
  request.cookie = "";
  request.orgId = "";
});

describe("the data retention settings", () => {
  it("start at the defaults and save all three periods, audited with the change", async () => {
    const owner = await createOwner();
    const db = await getDb();
    expect(await getRetentionSettings({ db, orgId: owner.orgId })).toEqual({
      auditDays: null,
      messageDays: 90,
      networkDays: 30,
    });
    await signIn(owner.user.id, owner.orgId);
    const result = await setRetentionAction(
      {},
      form({ auditDays: "400", messageDays: " 14 ", networkDays: "" }),
    );
    expect(result.ok).toBe(true);
    expect(result.message).toContain("IP addresses and user agents in activity are kept forever.");
    expect(await getRetentionSettings({ db, orgId: owner.orgId })).toEqual({
      auditDays: 400,
      messageDays: 14,
      networkDays: null,
    });
    const [event, ...more] = await auditEventsOf(owner.orgId, {
      action: "settings.retention_changed",
    });
    expect(more).toHaveLength(0);
    expect(event?.actorId).toBe(owner.user.id);
    expect(event?.userAgent).toBe("vitest-retention-settings");
    expect(event?.metadata).toEqual({
      from: { auditDays: null, messageDays: 90, networkDays: 30 },
      to: { auditDays: 400, messageDays: 14, networkDays: null },
    });
  });

  it("name each bad field and store nothing", async () => {
    const owner = await createOwner();
    const db = await getDb();
    await signIn(owner.user.id, owner.orgId);
    const result = await setRetentionAction(
      {},
      form({ auditDays: "30", messageDays: "0", networkDays: "ninety" }),
    );
    expect(result.ok).toBeUndefined();
    expect(result.fieldErrors?.auditDays).toBeUndefined();
    expect(result.fieldErrors?.messageDays).toEqual([
      "Keep recipients and subjects for at least 1 day.",
    ]);
    expect(result.fieldErrors?.networkDays).toEqual([
      "Enter a whole number of days, or leave empty to keep forever.",
    ]);
    const tooLong = await setRetentionAction({}, form({ auditDays: "3651", messageDays: "90" }));
    expect(tooLong.fieldErrors?.auditDays).toEqual([
      "At most 3650 days; leave empty to keep forever.",
    ]);
    expect(tooLong.fieldErrors?.networkDays).toEqual([
      "Enter a whole number of days, or leave empty to keep forever.",
    ]);
    expect(await getRetentionSettings({ db, orgId: owner.orgId })).toEqual({
      auditDays: null,
      messageDays: 90,
      networkDays: 30,
    });
    expect(await auditEventsOf(owner.orgId, { action: "settings.retention_changed" })).toEqual([]);
  });

  it("refuse a sender and leave the settings as they were", async () => {
    const owner = await createOwner();
    const sender = await createMember(owner.orgId, "sender");
    await signIn(sender.id, owner.orgId);
    const result = await setRetentionAction(
      {},
      form({ auditDays: "", messageDays: "", networkDays: "" }),
    );
    expect(result).toEqual({ message: "Your role does not allow this." });
    expect(await getRetentionSettings({ db: await getDb(), orgId: owner.orgId })).toEqual({
      auditDays: null,
      messageDays: 90,
      networkDays: 30,
    });
    const [denied] = await auditEventsOf(owner.orgId, { action: "access.denied" });
    expect(denied?.actorId).toBe(sender.id);
  });
});
