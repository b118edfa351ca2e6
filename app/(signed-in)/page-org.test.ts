import { eq } from "drizzle-orm";
import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { getDb } from "@/db";
import { sessions } from "@/db/schema";
import { PAGE_ORG_FIELD } from "@/lib/auth/page-org";
import { ensureDemoClients } from "@/lib/demo";
import { env } from "@/lib/env";
import { activeSwitches } from "@/lib/incidents/console";
import { auditEventsOf } from "@/lib/testing/audit";
import { createOwner, createSession, joinOrganization } from "@/lib/testing/factories";

// A form stays open in one tab while the person switches organisation in another: the form
// still names the organisation its page was rendered for, and the wrapper (lib/auth/action.ts)
// refuses it rather than act on the session's new organisation.
// The Next request context is the one thing substituted: next/headers answers with the session
// cookie of a real session row, which the real auth() looks up. Files share one module cache,
// so this file starts from an empty one (a module loaded with the real next/headers keeps it).
const request = vi.hoisted(() => {
  vi.resetModules();
  return { cookie: "" };
});
vi.mock("next/headers", () => ({
  headers: async () => new Headers({ cookie: request.cookie, "user-agent": "vitest-page-org" }),
  cookies: async () => {
    const [name = "", value = ""] = request.cookie.split("=");
    const jar = new Map(request.cookie ? [[name, { name, value }]] : []);
    return { get: (n: string) => jar.get(n), getAll: () => [...jar.values()], set: () => {} };
  },
}));
vi.mock("next/cache", () => ({ revalidatePath: () => {}, revalidateTag: () => {} }));

const { setSwitchAction } = await import("./(admin)/incidents/actions");
const { switchOrganizationAction } = await import("./organization-actions");

const REFUSED =
  "This page belongs to another organisation: you switched organisation in another tab. Reload the page and try again.";

function form(fields: Record<string, string>) {
  const data = new FormData();
  for (const [name, value] of Object.entries(fields)) data.set(name, value);
  return data;
}

/** An owner of X who is also an owner of Y, signed in with Y as the current organisation. */
async function ownerOfTwo() {
  const x = await createOwner("page-org-x");
  const y = await createOwner("page-org-y");
  await joinOrganization({ orgId: y.orgId, inviterId: y.user.id, user: x.user, role: "owner" });
  const token = await createSession(x.user.id);
  const db = await getDb();
  await db.update(sessions).set({ activeOrgId: y.orgId }).where(eq(sessions.sessionToken, token));
  request.cookie = `authjs.session-token=${token}`;
  return { xOrg: x.orgId, yOrg: y.orgId, token };
}

/** The organisation's own switches (a global one another file turns on is not ours). */
async function ownSwitches(orgId: string) {
  const on = await activeSwitches({ db: await getDb(), orgId });
  return on.filter((s) => s.scope === "organization").map((s) => s.kind);
}

const PAUSE = { kind: "pause_sending", on: "true", reason: "phishing wave" };

// Auth.js's configuration names the demo sign-in provider, whose client it reads from disk.
beforeAll(() => ensureDemoClients(env().dataDir));

afterEach(() => {
  request.cookie = "";
});

describe("a form from a page of another organisation than the session's", () => {
  it("is refused and pauses sending nowhere", async () => {
    const { xOrg, yOrg } = await ownerOfTwo();
    const result = await setSwitchAction({}, form({ ...PAUSE, [PAGE_ORG_FIELD]: xOrg }));
    expect(result).toEqual({ message: REFUSED });
    expect(await ownSwitches(yOrg)).toEqual([]);
    expect(await ownSwitches(xOrg)).toEqual([]);
    expect(await auditEventsOf(yOrg, { action: "switch.changed" })).toEqual([]);
    expect(await auditEventsOf(xOrg, { action: "switch.changed" })).toEqual([]);
  });

  it("is refused when it does not name its organisation at all", async () => {
    const { xOrg, yOrg } = await ownerOfTwo();
    const result = await setSwitchAction({}, form(PAUSE));
    expect(result.ok).toBeUndefined();
    expect(result.message).toMatch(/did not say which organisation/);
    expect(await ownSwitches(yOrg)).toEqual([]);
    expect(await ownSwitches(xOrg)).toEqual([]);
  });

  it("works from a page of the session's organisation, and only there", async () => {
    const { xOrg, yOrg } = await ownerOfTwo();
    const result = await setSwitchAction({}, form({ ...PAUSE, [PAGE_ORG_FIELD]: yOrg }));
    expect(result).toEqual({ ok: true, message: "Sending paused." });
    expect(await ownSwitches(yOrg)).toEqual(["pause_sending"]);
    expect(await ownSwitches(xOrg)).toEqual([]);
    expect(await auditEventsOf(yOrg, { action: "switch.changed" })).toHaveLength(1);
  });

  it("still switches organisation: the switcher posts from a page of the one being left", async () => {
    const { xOrg, yOrg, token } = await ownerOfTwo();
    // Tab A shows Y; the session moved on to X in tab B; tab A's switcher now asks for Y.
    const db = await getDb();
    await db.update(sessions).set({ activeOrgId: xOrg }).where(eq(sessions.sessionToken, token));
    const redirected = await switchOrganizationAction(
      {},
      form({ orgId: yOrg, [PAGE_ORG_FIELD]: yOrg }),
    ).then(
      () => null,
      (error: { digest?: string }) => error.digest ?? null,
    );
    expect(redirected).toMatch(/^NEXT_REDIRECT;/);
    const [row] = await db
      .select({ activeOrgId: sessions.activeOrgId })
      .from(sessions)
      .where(eq(sessions.sessionToken, token));
    expect(row?.activeOrgId).toBe(yOrg);
  });
});
