import { expect, test } from "@playwright/test";
import { POSTGRES, signInAs, uniqueEmail } from "./helpers";

async function openConsentExplanation(page: import("@playwright/test").Page) {
  await page.getByRole("link", { name: "Mailboxes" }).click();
  await page.getByRole("link", { name: /^Connect Demo/ }).click();
  const requested = page.getByRole("list", { name: "Requested permissions" });
  await expect(requested).toContainText("Send email as this demo mailbox");
  await expect(requested).toContainText("Keep access while you are away");
  await expect(page.getByText("Mailwarden never:")).toBeVisible();
  await page.getByRole("button", { name: /^Continue to/ }).click();
}

test(
  "[ADMIN][MAILBOXES] consent explanation, then the provider's consent, then a connected mailbox with its scopes",
  POSTGRES,
  async ({ page }) => {
    const owner = uniqueEmail("owner");
    await signInAs(page, owner);
    await page.getByRole("link", { name: "Mailboxes" }).click();
    await expect(page.getByText("No mailbox yet")).toBeVisible();

    await openConsentExplanation(page);
    await expect(page.getByLabel(/Send email as you/)).toBeChecked();
    await page.getByRole("button", { name: "Allow" }).click();

    await expect(page.getByRole("status").filter({ hasText: "is connected" })).toContainText(owner);
    await expect(page.getByText("Connected", { exact: true })).toBeVisible();
    await expect(page.getByTestId("granted-scopes")).toContainText("mail.send");
    await expect(page.getByTestId("granted-scopes")).toContainText("offline_access");
  },
);

test("[ADMIN][MAILBOXES] with the mail scope unticked the mailbox is not connected, and the page says why", async ({
  page,
}) => {
  const owner = uniqueEmail("owner");
  await signInAs(page, owner);
  await openConsentExplanation(page);
  await page.getByLabel(/Send email as you/).uncheck();
  await page.getByRole("button", { name: "Allow" }).click();

  await expect(
    page.getByRole("alert").filter({ hasText: "The mailbox was not connected" }),
  ).toContainText("Send email as this demo mailbox");
  await page.getByRole("link", { name: "Mailboxes" }).click();
  await expect(page.getByText("No mailbox yet")).toBeVisible();
});

test(
  "[ADMIN][MAILBOXES] revoke asks for confirmation, shows the mailbox revoked and offers to connect it again",
  POSTGRES,
  async ({ page }) => {
    const owner = uniqueEmail("owner");
    await signInAs(page, owner);
    await openConsentExplanation(page);
    await page.getByRole("button", { name: "Allow" }).click();
    await expect(page.getByRole("status").filter({ hasText: "is connected" })).toBeVisible();

    page.once("dialog", (dialog) => dialog.dismiss());
    await page.getByRole("button", { name: `Revoke ${owner}` }).click();
    await expect(page.getByText("Connected", { exact: true })).toBeVisible();

    page.once("dialog", (dialog) => dialog.accept());
    await page.getByRole("button", { name: `Revoke ${owner}` }).click();
    await expect(page.getByText("Revoked", { exact: true })).toBeVisible();
    await expect(page.getByRole("status").filter({ hasText: /revoked/i })).toBeVisible();

    await page.getByRole("link", { name: "Reconnect" }).click();
    await expect(page.getByRole("heading", { name: `Reconnect ${owner}` })).toBeVisible();
  },
);
