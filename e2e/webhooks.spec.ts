import { createHmac, timingSafeEqual } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { expect, test } from "@playwright/test";
import { expectNoAxeViolations } from "./axe";
import { signInAs, uniqueEmail } from "./helpers";

// A real receiver in the test process; the app (demo mode) may post to loopback over http.
// The signature is checked here from the spec, not with Mailwarden's own code.

type Got = { headers: http.IncomingHttpHeaders; body: string };

function verifies(secret: string, got: Got): boolean {
  const id = String(got.headers["webhook-id"]);
  const timestamp = String(got.headers["webhook-timestamp"]);
  const key = Buffer.from(secret.replace(/^whsec_/, ""), "base64");
  const expected = Buffer.from(
    `v1,${createHmac("sha256", key).update(`${id}.${timestamp}.${got.body}`).digest("base64")}`,
  );
  return String(got.headers["webhook-signature"])
    .split(" ")
    .some(
      (s) => Buffer.from(s).length === expected.length && timingSafeEqual(Buffer.from(s), expected),
    );
}

test("[ADMIN][WEBHOOKS] an endpoint is created, its secret shown once, and a test delivery arrives signed and is listed with its 200", async ({
  page,
}) => {
  const received: Got[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      received.push({ headers: req.headers, body: Buffer.concat(chunks).toString("utf8") });
      res.writeHead(200, { "content-type": "text/plain" });
      res.end("thanks from the receiver");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`;
  try {
    await signInAs(page, uniqueEmail("owner"));
    await page.getByRole("link", { name: "Webhooks" }).first().click();
    await expect(page).toHaveURL(/\/webhooks$/);
    await expect(page.getByText("No endpoint yet")).toBeVisible();
    await expectNoAxeViolations(page);

    // A refused form names the field.
    await page.getByRole("button", { name: "Create endpoint" }).click();
    await expect(page.getByLabel("URL")).toHaveAttribute("aria-invalid", "true");
    await expectNoAxeViolations(page);

    await page.getByLabel("URL").fill(url);
    await page.getByLabel("Description (optional)").fill("e2e receiver");
    await page.getByRole("checkbox", { name: /message\.sent/ }).check();
    await page.getByRole("button", { name: "Create endpoint" }).click();
    const secret = await page.getByLabel("Signing secret of the new endpoint").inputValue();
    expect(secret).toMatch(/^whsec_[A-Za-z0-9+/]+=*$/);
    await expect(page.getByText(/This secret is shown once/)).toBeVisible();
    await expectNoAxeViolations(page);

    // Once: a reload shows the endpoint, never the secret.
    await page.reload();
    await expect(page.getByLabel("Signing secret of the new endpoint")).toHaveCount(0);
    expect(await page.content()).not.toContain(secret.slice(6));
    await page.getByRole("link", { name: url }).click();
    await expect(page.getByRole("heading", { name: "Webhook endpoint" })).toBeVisible();
    await expect(page.getByText("No delivery yet")).toBeVisible();

    await page.getByRole("button", { name: "Send a test delivery" }).click();
    await expect(page.getByText("Test delivery queued")).toBeVisible();
    await expect(async () => {
      await page.reload();
      const row = page.getByRole("row").filter({ hasText: "webhook.test" });
      await expect(row.getByText("delivered")).toBeVisible({ timeout: 1_000 });
      await expect(row.getByText("HTTP 200")).toBeVisible({ timeout: 1_000 });
      await expect(row.getByText("thanks from the receiver")).toBeVisible({ timeout: 1_000 });
    }).toPass({ timeout: 30_000 });
    await expectNoAxeViolations(page);

    expect(received).toHaveLength(1);
    const [got] = received as [Got];
    expect(JSON.parse(got.body)).toMatchObject({ type: "webhook.test" });
    expect(verifies(secret, got)).toBe(true);
    expect(verifies(secret, { ...got, body: got.body.replace("test", "tesT") })).toBe(false);
    expect(await page.content()).not.toContain(secret.slice(6));
  } finally {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});
