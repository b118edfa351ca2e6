import { randomUUID } from "node:crypto";
import { expect, test } from "@playwright/test";
import { connectDemoMailbox, signInAs, uniqueEmail } from "./helpers";

test("[ADMIN][KEYS] a key with an expiry: shown once with a copy button, then its mailboxes edited", async ({
  page,
  context,
}) => {
  await context.grantPermissions(["clipboard-read", "clipboard-write"]);
  const owner = uniqueEmail("owner");
  await signInAs(page, owner);
  await connectDemoMailbox(page);

  await page.goto("/api-keys");
  const name = `expiring ${randomUUID().slice(0, 6)}`;
  await page.getByLabel("Name").fill(name);
  await page.getByLabel("Expires on (optional)").fill("2099-12-31");
  await page.getByRole("button", { name: "Create key" }).click();
  const key = await page.getByLabel("Your new API key").inputValue();
  expect(key).toMatch(/^mwk_/);
  await expect(page.getByText(/shown once\. Keep it in a secret manager/)).toBeVisible();
  await page.getByRole("button", { name: "Copy the new API key" }).click();
  await expect(page.getByRole("status").filter({ hasText: "Copied" })).toBeVisible();
  expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(key);

  const row = page.getByRole("row").filter({ hasText: name });
  await expect(row.getByRole("cell", { name: "2099-12-31 23:59 UTC" })).toBeVisible();
  await expect(row.getByRole("cell", { name: /All mailboxes/ })).toBeVisible();
  await row.getByText("Edit mailboxes").click();
  await row.getByRole("checkbox", { name: owner }).check();
  await row.getByRole("button", { name: `Save mailboxes of ${name}` }).click();
  await expect(page.getByText("Mailboxes saved")).toBeVisible();
  await page.reload();
  const saved = page.getByRole("row").filter({ hasText: name });
  await expect(saved.getByRole("cell", { name: /All mailboxes/ })).toHaveCount(0);
  await expect(saved.getByRole("cell", { name: new RegExp(owner) })).toBeVisible();
});

test("[ADMIN][NOTIFY] without a sender only notices are shown; with one, a new key is emailed to the owner", async ({
  page,
}) => {
  const owner = uniqueEmail("owner");
  await signInAs(page, owner);
  await connectDemoMailbox(page);

  await page.goto("/notifications");
  await expect(page.getByText("only dashboard notices are shown")).toBeVisible();
  await page.getByLabel("Send notification emails from").selectOption({ label: owner });
  await page.getByRole("button", { name: "Save" }).click();
  await expect(
    page.getByText("Saved: notification emails are sent from this mailbox."),
  ).toBeVisible();

  const name = `notified ${randomUUID().slice(0, 6)}`;
  await page.goto("/api-keys");
  await page.getByLabel("Name").fill(name);
  await page.getByRole("button", { name: "Create key" }).click();
  await expect(page.getByLabel("Your new API key")).toHaveValue(/^mwk_/);

  await expect(async () => {
    await page.goto("/demo-inbox");
    await expect(page.getByRole("heading", { name: `API key created: ${name}` })).toBeVisible({
      timeout: 1_000,
    });
  }).toPass({ timeout: 20_000 });
});
