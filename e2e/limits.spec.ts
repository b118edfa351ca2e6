import { randomUUID } from "node:crypto";
import { expect, test } from "@playwright/test";
import { connectDemoMailbox, sendTestMessage, signInAs } from "./helpers";

// A demo address tagged +limit answers as Microsoft does at its daily submission quota
// (554 5.2.0 SubmissionQuotaExceededException; lib/demo/smtp.ts, DEMO_ADDRESS_TAGS).
test("[ADMIN][LIMITS] a mailbox meets its provider's daily limit: the queued message waits and is cancelled, sends say until when, the mailbox shows it", async ({
  page,
}) => {
  const owner = `owner-${randomUUID().slice(0, 8)}+limit@example.test`;
  const queued = `Waiting for the limit ${randomUUID().slice(0, 8)}`;
  const refused = `Over the limit ${randomUUID().slice(0, 8)}`;
  await signInAs(page, owner);
  await connectDemoMailbox(page);

  // A service's message is queued; its attempt meets the provider's reply and it waits for
  // the time the limit ends (retrying, next try then).
  await page.goto("/api-keys");
  await page.getByLabel("Name").fill("queue service");
  await page.getByRole("button", { name: "Create key" }).click();
  const key = await page.getByLabel("Your new API key").inputValue();
  const headers = { Authorization: `Bearer ${key}` };
  const message = { mailbox: owner, to: ["customer@example.test"], text: "Later." };
  const accepted = await page.request.post("/api/v1/messages", {
    headers: { ...headers, Prefer: "respond-async" },
    data: { ...message, subject: queued },
  });
  expect(accepted.status()).toBe(202);
  const location = accepted.headers().location ?? "";
  expect(location).toMatch(/^\/api\/v1\/messages\/[0-9a-f-]{36}$/);
  const state = async () => {
    const view = await (await page.request.get(location, { headers })).json();
    return `${view.status}: ${view.error?.cause ?? ""}`;
  };
  await expect.poll(state, { timeout: 20_000 }).toMatch(/^retrying: .*Limit reached until/);

  // Until then every send is refused before any SMTP, and says until when.
  const later = await page.request.post("/api/v1/messages", {
    headers: { ...headers, Prefer: "respond-async" },
    data: { ...message, subject: refused },
  });
  expect(later.status()).toBe(429);
  expect(Number(later.headers()["retry-after"])).toBeGreaterThan(0);
  await page.goto("/");
  await sendTestMessage(page, owner, refused);
  await expect(page.getByRole("alert").filter({ hasText: /Limit reached until/ })).toBeVisible();

  await page.goto("/mailboxes");
  await expect(page.getByText(/^Limit reached until [\d-]+ [\d:]+ UTC$/)).toBeVisible();
  await expect(page.getByTestId("limit-reached")).toContainText("needs nothing");

  await page.goto("/messages");
  const row = page.getByRole("row").filter({ hasText: queued });
  await expect(row.getByText("retrying", { exact: true })).toBeVisible();
  page.once("dialog", (dialog) => dialog.accept());
  await row.getByRole("button", { name: `Cancel message ${queued}` }).click();
  await expect(row.getByText("cancelled", { exact: true })).toBeVisible();
  await expect(row.getByRole("button", { name: /^Cancel message/ })).toHaveCount(0);
  expect(await (await page.request.get(location, { headers })).json()).toMatchObject({
    status: "cancelled",
  });

  await page.goto("/demo-inbox");
  await expect(page.getByRole("heading", { name: "Demo inbox" })).toBeVisible();
  await expect(page.getByText(queued)).toHaveCount(0);
  await expect(page.getByText(refused)).toHaveCount(0);
});
