import { randomUUID } from "node:crypto";
import http from "node:http";
import { expect, test } from "@playwright/test";
import { E2E_SIGN_IN_LIMIT } from "../playwright.config";
import { connectDemoMailbox, signInAs, switchUser, uniqueEmail } from "./helpers";

const nonceOf = (csp: string | undefined) => /'nonce-([^']+)'/.exec(csp ?? "")?.[1];

test("[SECURITY][HEADERS] pages and routes send a per-request nonce CSP and the other security headers", async ({
  request,
}) => {
  const first = await request.get("/sign-in");
  const second = await request.get("/sign-in");
  const api = await request.get("/api/health");
  const missing = await request.get(`/no-such-page-${randomUUID()}`);
  expect(missing.status()).toBe(404);

  for (const response of [first, api, missing]) {
    const headers = response.headers();
    const csp = headers["content-security-policy"] ?? "";
    const scriptSrc = csp.split(";").find((d) => d.trim().startsWith("script-src")) ?? "";
    expect(scriptSrc).toMatch(/'nonce-[^']+'/);
    expect(scriptSrc).not.toContain("unsafe-inline");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).toContain("object-src 'none'");
    expect(headers["x-content-type-options"]).toBe("nosniff");
    expect(headers["referrer-policy"]).toBe("strict-origin-when-cross-origin");
    // The suite's APP_URL is http://localhost: no HSTS there.
    expect(headers["strict-transport-security"]).toBeUndefined();
  }

  const nonce = nonceOf(first.headers()["content-security-policy"]);
  expect(nonce).toBeTruthy();
  expect(nonceOf(second.headers()["content-security-policy"])).not.toBe(nonce);
  for (const page of [first, missing]) {
    const html = await page.text();
    const scripts = [...html.matchAll(/<script\b[^>]*>/g)].map((m) => m[0]);
    expect(scripts.length).toBeGreaterThan(0);
    const own = nonceOf(page.headers()["content-security-policy"]);
    for (const script of scripts) expect(script).toContain(`nonce="${own}"`);
  }
});

test("[SECURITY][HEADERS] signing in, connecting, sending and every page run without a CSP violation", async ({
  page,
}) => {
  const owner = uniqueEmail("owner");
  const subject = `CSP check ${randomUUID().slice(0, 8)}`;
  // signInAs fails the test on any violation the browser reports, on our pages and the provider's.
  await signInAs(page, owner);
  await connectDemoMailbox(page);
  await page.goto("/send");
  await page.getByLabel("To").fill("someone@example.test");
  await page.getByLabel("Subject").fill(subject);
  await page.getByLabel("Message").fill("Scripts ran.");
  await page.getByRole("button", { name: "Send test message" }).click();
  await expect(page.getByRole("status").filter({ hasText: "Sent." })).toBeVisible();
  for (const path of ["/", "/messages", "/demo-inbox", "/api-keys", "/members", "/activity"]) {
    await page.goto(path);
    await expect(page.getByRole("heading", { level: 1 })).toBeVisible();
  }
  await page.goto(`/no-such-page-${randomUUID()}`);
  await expect(page.getByRole("heading", { level: 1 })).toBeVisible();
});

test("[SECURITY][DEMO] the demo inbox shows another organisation none of its mail", async ({
  page,
}) => {
  const ownerA = uniqueEmail("owner-a");
  const ownerB = uniqueEmail("owner-b");
  const subjectA = `Organisation A only ${randomUUID().slice(0, 8)}`;
  await signInAs(page, ownerA);
  await connectDemoMailbox(page);
  await page.goto("/send");
  await page.getByLabel("To").fill("someone@example.test");
  await page.getByLabel("Subject").fill(subjectA);
  await page.getByLabel("Message").fill("Private to A.");
  await page.getByRole("button", { name: "Send test message" }).click();
  await expect(page.getByRole("status").filter({ hasText: "Sent." })).toBeVisible();
  await page.goto("/demo-inbox");
  await expect(page.getByRole("heading", { name: subjectA })).toBeVisible();

  await switchUser(page, ownerB);
  await connectDemoMailbox(page);
  await page.goto("/demo-inbox");
  await expect(page.getByRole("heading", { name: "Demo inbox" })).toBeVisible();
  await expect(page.getByRole("heading", { name: subjectA })).toHaveCount(0);
  await expect(page.getByText("Nothing has arrived yet")).toBeVisible();
});

type Answer = { status: number; headers: http.IncomingHttpHeaders; body: string };

/** A request from a chosen loopback address, so that this test has a socket address of its own. */
function fromAddress(
  baseURL: string,
  localAddress: string,
  path: string,
  opts: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      new URL(path, baseURL),
      { method: opts.method ?? "GET", headers: opts.headers, localAddress },
      (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (chunk) => {
          body += chunk;
        });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      },
    );
    req.on("error", reject);
    req.end(opts.body);
  });
}

test("[SECURITY][RATE LIMIT] sign-in attempts from one socket hit the limit whatever X-Forwarded-For says", async ({
  baseURL,
}) => {
  const base = baseURL as string;
  // 127.0.0.2 is loopback too: this test's count does not touch the browser tests' address.
  const csrf = await fromAddress(base, "127.0.0.2", "/api/auth/csrf");
  const { csrfToken } = JSON.parse(csrf.body) as { csrfToken: string };
  const cookie = (csrf.headers["set-cookie"] ?? []).map((c) => c.split(";")[0]).join("; ");
  const attempt = (localAddress: string, forwardedFor: string) =>
    fromAddress(base, localAddress, "/api/auth/signin/demo", {
      method: "POST",
      headers: {
        "content-type": "application/x-www-form-urlencoded",
        cookie,
        "x-forwarded-for": forwardedFor,
      },
      body: new URLSearchParams({ csrfToken, callbackUrl: "/" }).toString(),
    });

  const statuses: number[] = [];
  for (let i = 0; i <= E2E_SIGN_IN_LIMIT + 10; i++) {
    const { status } = await attempt("127.0.0.2", `198.51.${i >> 8}.${i & 255}`);
    statuses.push(status);
    if (status === 429) break;
  }
  // Every attempt up to the limit went on to the provider; the next one, with yet another
  // X-Forwarded-For, was refused.
  expect(statuses.length).toBe(E2E_SIGN_IN_LIMIT + 1);
  expect(statuses.slice(0, -1).every((status) => status === 302)).toBe(true);
  const refused = await attempt("127.0.0.2", "203.0.113.250");
  expect(refused.status).toBe(429);
  expect(Number(refused.headers["retry-after"])).toBeGreaterThan(0);
  // Another socket, claiming the same forwarded address, is counted on its own.
  expect((await attempt("127.0.0.3", "203.0.113.250")).status).toBe(302);
});

test("[SECURITY][SESSIONS] a stolen session cannot link the thief's own sign-in account to its person", async ({
  page,
  browser,
  baseURL,
}) => {
  const victim = uniqueEmail("victim");
  const thief = uniqueEmail("thief");
  await signInAs(page, victim);
  const session = (await page.context().cookies()).find((c) => c.name.endsWith("session-token"));
  expect(session).toBeDefined();

  // The thief's browser carries the victim's session and signs in with an account of their own.
  const stolen = await browser.newContext({ baseURL });
  const thiefPage = await stolen.newPage();
  await stolen.addCookies([session as NonNullable<typeof session>]);
  await thiefPage.goto("/sign-in?error=x");
  await thiefPage.getByRole("button", { name: "Sign in with Demo provider" }).click();
  await thiefPage.getByLabel("Email").fill(thief);
  await thiefPage.getByRole("button", { name: "Sign in" }).click();
  const allow = thiefPage.getByRole("button", { name: "Allow" });
  if (await allow.isVisible().catch(() => false)) await allow.click();
  await expect(thiefPage.getByText("Another sign-in account cannot be added")).toBeVisible();
  await stolen.close();

  // Signed in on its own, the thief's account is a person of its own, not the victim.
  const fresh = await browser.newContext({ baseURL });
  const freshPage = await fresh.newPage();
  await signInAs(freshPage, thief);
  await expect(freshPage.getByTestId("current-org")).toHaveText(thief.split("@")[0] ?? thief);
  await fresh.close();
});
