import { NextRequest } from "next/server";
import { createElement } from "react";
import { renderToStaticMarkup } from "react-dom/server";
import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { getDb } from "@/db";
import { ensureDemoClients } from "@/lib/demo";
import { env } from "@/lib/env";
import { pauseMailbox } from "@/lib/incidents/console";
import {
  buildMicrosoftProvider,
  registerMailProvider,
  resetMailProviders,
} from "@/lib/oauth/providers";
import { authorizeInBrowser } from "@/lib/oauth/testing/demo";
import {
  connectDemoMailbox,
  type Person,
  REQUEST,
  readMailbox,
  startFor,
} from "@/lib/oauth/testing/fixtures";
import { useProviderTestbeds } from "@/lib/oauth/testing/testbeds";
import { memberContext } from "@/lib/testing/context";
import { createOwner, createSession } from "@/lib/testing/factories";

// The pages a person lands on after the provider answered: the connect page (what it tells them
// about the permission the provider had just given) and the mailboxes page after a connect. The callback route runs for real (signed in through a real
// session row, as in app/(signed-in)/page-org.test.ts), and its redirect is rendered as the page.
const request = vi.hoisted(() => {
  vi.resetModules();
  return { cookie: "" };
});
vi.mock("next/headers", () => ({
  headers: async () => new Headers({ cookie: request.cookie, "user-agent": "vitest-connect" }),
  cookies: async () => {
    const [name = "", value = ""] = request.cookie.split("=");
    const jar = new Map(request.cookie ? [[name, { name, value }]] : []);
    return { get: (n: string) => jar.get(n), getAll: () => [...jar.values()], set: () => {} };
  },
}));
vi.mock("next/cache", () => ({ revalidatePath: () => {}, revalidateTag: () => {} }));

const { GET } = await import("@/app/api/oauth/[provider]/callback/route");
const { default: ConnectProviderPage } = await import("./page");
const { default: MailboxesPage } = await import("../../(list)/page");

const beds = useProviderTestbeds();

beforeAll(() => ensureDemoClients(env().dataDir));

afterEach(() => {
  request.cookie = "";
  resetMailProviders();
  registerMailProvider(beds.demo.provider);
});

const email = (prefix: string) =>
  `${prefix}-${Math.random().toString(36).slice(2, 10)}@example.test`;

/** The claim that must appear only when the provider confirmed it withdrew the permission. */
const WITHDRAWN_CLAIM = /withdrawn|asked [^.]* to withdraw it/;

async function signIn(person: Person) {
  request.cookie = `authjs.session-token=${await createSession(person.user.id)}`;
}

/** The connect page's visible text. */
async function renderPage(provider: string, query: Record<string, string>) {
  return visibleText(
    await ConnectProviderPage({
      params: Promise.resolve({ provider }),
      searchParams: Promise.resolve(query),
    }),
  );
}

function visibleText(element: Awaited<ReturnType<typeof ConnectProviderPage>>) {
  return renderToStaticMarkup(createElement(() => element))
    .replace(/<[^>]+>/g, " ")
    .replace(/&#x27;/g, "'")
    .replace(/&quot;/g, '"')
    .replace(/&amp;/g, "&")
    .replace(/\s+/g, " ");
}

/** The browser comes back to the callback route; the page it is sent to, rendered. */
async function landOnPage(callbackUrl: URL) {
  const response = await GET(new NextRequest(callbackUrl), {
    params: Promise.resolve({ provider: "demo" }),
  });
  expect(response.status).toBe(303);
  const location = new URL(response.headers.get("location") ?? "");
  const query = Object.fromEntries(location.searchParams);
  return { query, text: await renderPage("demo", query) };
}

async function connected(owner: Person, address: string) {
  const { result } = await connectDemoMailbox(owner, { email: address });
  if (result.kind !== "connected") throw new Error(`not connected: ${result.kind}`);
  return result.mailboxId;
}

describe("connect page after a reconnect that chose another account", () => {
  it("without a revocation endpoint (Microsoft-like): no claim that the permission was withdrawn", async () => {
    const owner = await createOwner();
    const mailboxId = await connected(owner, email("first"));
    registerMailProvider({ ...beds.demo.provider, revocationEndpoint: null });
    const url = await startFor(owner, "demo", mailboxId);
    const flow = await authorizeInBrowser(url.toString(), { email: email("other") });
    await signIn(owner);

    const { query, text } = await landOnPage(flow.callbackUrl);
    expect(query).toMatchObject({ result: "refused", reason: "other_account" });
    expect(text).toContain("a different account was chosen");
    expect(text).not.toMatch(WITHDRAWN_CLAIM);
    expect(text).toContain("offers apps no way to withdraw a permission");
    expect(text).toContain("remove Mailwarden's access");
  });

  it("where revoking ends every grant of the account (Google) and a mailbox uses it: says it was kept", async () => {
    const owner = await createOwner();
    const mailboxId = await connected(owner, email("first"));
    const otherAccount = email("other");
    await connected(owner, otherAccount);
    registerMailProvider({ ...beds.demo.provider, revocationEndsAccountGrants: true });
    const url = await startFor(owner, "demo", mailboxId);
    const flow = await authorizeInBrowser(url.toString(), { email: otherAccount });
    const revocationsBefore = beds.demo.proxy.revocationCalls;
    await signIn(owner);

    const { query, text } = await landOnPage(flow.callbackUrl);
    expect(query).toMatchObject({ result: "refused", reason: "other_account" });
    expect(beds.demo.proxy.revocationCalls).toBe(revocationsBefore);
    expect(text).not.toMatch(WITHDRAWN_CLAIM);
    const label = beds.demo.provider.label;
    expect(text).toContain(`did not ask ${label} to withdraw the permission`);
    expect(text).toContain("a mailbox connected to Mailwarden still uses the account");
  });

  it("where the provider revoked it: says so", async () => {
    const owner = await createOwner();
    const mailboxId = await connected(owner, email("first"));
    const url = await startFor(owner, "demo", mailboxId);
    const flow = await authorizeInBrowser(url.toString(), { email: email("other") });
    await signIn(owner);
    const { text } = await landOnPage(flow.callbackUrl);
    const label = beds.demo.provider.label;
    expect(text).toContain(`it asked ${label} to withdraw it, and ${label} confirmed`);
  });
});

describe("connect page: what it says of a grant it could not withdraw", () => {
  it("Microsoft: names where the consent is removed by hand", async () => {
    const owner = await createOwner();
    registerMailProvider(
      buildMicrosoftProvider({ clientId: "client", clientSecret: "secret", tenant: "common" }),
    );
    await signIn(owner);
    const text = await renderPage("microsoft", {
      result: "refused",
      reason: "other_account",
      withdrawn: "not_supported",
    });
    expect(text).not.toMatch(WITHDRAWN_CLAIM);
    expect(text).toContain("https://myapps.microsoft.com");
    expect(text).toContain("Microsoft Entra admin center › Enterprise applications");
  });

  it("an outcome it does not know is ignored, not shown", async () => {
    const owner = await createOwner();
    await signIn(owner);
    for (const withdrawn of ["revoked ", "<b>revoked</b>", "REVOKED", "toString"]) {
      const text = await renderPage("demo", {
        result: "refused",
        reason: "address_in_use",
        withdrawn,
      });
      expect(text).toContain("Nothing was changed.");
      expect(text).not.toMatch(WITHDRAWN_CLAIM);
      expect(text).not.toContain("Mailwarden discarded");
      expect(text).not.toContain(withdrawn);
    }
  });
});

describe("connect page: a grant without offline access", () => {
  it("offline access unticked at the provider: the page names it", async () => {
    const owner = await createOwner();
    const url = await startFor(owner, "demo");
    const flow = await authorizeInBrowser(url.toString(), {
      email: email("offline"),
      untick: ["offline_access"],
    });
    await signIn(owner);
    const { query, text } = await landOnPage(flow.callbackUrl);
    expect(query).toMatchObject({ result: "missing_scope", missing: "offline_access" });
    expect(text).toContain("Missing: Keep access while you are away (offline access)");
    expect(text).toContain("leave that box ticked");
    // The sending permission was granted: the page does not say it was not.
    expect(text).not.toContain("The permission to send was not granted");
  });

  it("no refresh token given (Google after an earlier consent): the page names it", async () => {
    const owner = await createOwner();
    await signIn(owner);
    const text = await renderPage("demo", { result: "missing_scope", missing: "refresh_token" });
    expect(text).toContain("Missing: Keep access while you are away (offline access)");
    expect(text).toContain("gave Mailwarden no refresh token");
    expect(text).not.toContain("The permission to send was not granted");
  });
});

describe("mailboxes page after reconnecting a paused mailbox", () => {
  it("says it is reconnected but still paused, and how to resume it", async () => {
    const owner = await createOwner();
    const address = email("paused");
    const mailboxId = await connected(owner, address);
    await pauseMailbox({
      db: await getDb(),
      ctx: memberContext(owner.orgId, owner.user, "owner", REQUEST),
      mailboxId,
      paused: true,
      reason: "phishing wave",
    });
    const url = await startFor(owner, "demo", mailboxId);
    const flow = await authorizeInBrowser(url.toString(), { email: address });
    await signIn(owner);

    const response = await GET(new NextRequest(flow.callbackUrl), {
      params: Promise.resolve({ provider: "demo" }),
    });
    const location = new URL(response.headers.get("location") ?? "");
    expect(location.pathname).toBe("/mailboxes");
    expect(await readMailbox(mailboxId)).toMatchObject({ status: "paused" });
    const text = visibleText(
      await MailboxesPage({
        searchParams: Promise.resolve(Object.fromEntries(location.searchParams)),
      }),
    );
    expect(text).toContain(`${address} is reconnected, but it is still paused`);
    expect(text).toContain("Resume it with its Resume button below");
    expect(text).not.toContain("Mailwarden can now send from it");
  });
});
