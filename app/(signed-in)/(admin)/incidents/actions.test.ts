import { beforeAll, describe, expect, it, vi } from "vitest";
import { PAGE_ORG_FIELD } from "@/lib/auth/page-org";
import { ensureDemoClients } from "@/lib/demo";
import { env } from "@/lib/env";
import { auditEventsOf } from "@/lib/testing/audit";
import { createOwner, createSession } from "@/lib/testing/factories";

// The operators' actions refused to an owner who is not named in OPERATOR_EMAILS. As in
// page-org.test.ts, only the Next request context is substituted (a real session row's cookie).
const request = vi.hoisted(() => {
  vi.resetModules();
  return { cookie: "" };
});
vi.mock("next/headers", () => ({
  headers: async () => new Headers({ cookie: request.cookie, "user-agent": "vitest-incidents" }),
  cookies: async () => {
    const [name = "", value = ""] = request.cookie.split("=");
    const jar = new Map(request.cookie ? [[name, { name, value }]] : []);
    return { get: (n: string) => jar.get(n), getAll: () => [...jar.values()], set: () => {} };
  },
}));
vi.mock("next/cache", () => ({ revalidatePath: () => {}, revalidateTag: () => {} }));

const { reencryptAction, setGlobalSwitchAction } = await import("./actions");

function form(fields: Record<string, string>) {
  const data = new FormData();
  for (const [name, value] of Object.entries(fields)) data.set(name, value);
  return data;
}

beforeAll(() => ensureDemoClients(env().dataDir));

describe("an operator's action asked for by an owner who is no operator", {
  timeout: 120_000,
}, () => {
  it("is refused and audited as needing the operator permission", async () => {
    const owner = await createOwner("not-operator");
    request.cookie = `authjs.session-token=${await createSession(owner.user.id)}`;
    const page = { [PAGE_ORG_FIELD]: owner.orgId };

    const global = await setGlobalSwitchAction(
      {},
      form({ kind: "pause_sending", on: "true", reason: "everyone", ...page }),
    );
    expect(global).toEqual({ message: "Your role does not allow this." });
    const reencrypt = await reencryptAction({}, form(page));
    expect(reencrypt).toEqual({ message: "Your role does not allow this." });

    const denied = await auditEventsOf(owner.orgId, { action: "access.denied" });
    expect(denied.map((e) => [e.targetId, e.metadata.permission])).toEqual([
      ["action:incidents.global_switch", "operator"],
      ["action:incidents.reencrypt", "operator"],
    ]);
    request.cookie = "";
  });
});
