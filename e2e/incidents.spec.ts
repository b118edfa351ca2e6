import { randomUUID } from "node:crypto";
import { expect, test } from "@playwright/test";
import { connectDemoMailbox, POSTGRES, sendTestMessage, signInAs, uniqueEmail } from "./helpers";

test(
  "[ADMIN][INCIDENTS] pausing all sending shows the banner and refuses a test send with the reason; releasing lets it go",
  POSTGRES,
  async ({ page }) => {
    const owner = uniqueEmail("owner");
    const reason = `Token leak drill ${randomUUID().slice(0, 6)}`;
    await signInAs(page, owner);
    await connectDemoMailbox(page);

    await page.getByRole("link", { name: "Incidents" }).click();
    await page.getByRole("button", { name: "Pause all sending" }).click();
    await page.getByLabel("Reason").fill(reason);
    await page.getByRole("button", { name: "Yes, pause all sending" }).click();
    await expect(page.getByRole("status").filter({ hasText: "Sending paused." })).toBeVisible();

    const banner = page.getByRole("alert", { name: "Incident switches" });
    await expect(banner).toContainText("Sending is paused");
    await expect(banner).toContainText(reason);

    await sendTestMessage(page, owner, "Should not leave");
    await expect(page.getByRole("alert", { name: "Incident switches" })).toContainText(reason);
    await expect(
      page.getByRole("alert").filter({
        hasText: `Sending is paused for this organisation by an incident switch: ${reason}`,
      }),
    ).toBeVisible();

    await page.getByRole("link", { name: "Incidents" }).click();
    await page.getByRole("button", { name: "Release sending" }).click();
    await page.getByRole("button", { name: "Yes, release sending" }).click();
    await expect(page.getByRole("status").filter({ hasText: "Sending released." })).toBeVisible();
    await expect(page.getByRole("alert", { name: "Incident switches" })).toHaveCount(0);

    await sendTestMessage(page, owner, "Goes after the release");
    await expect(
      page.getByRole("status").filter({ hasText: "Sent. The server replied: 250" }),
    ).toBeVisible();
  },
);

test(
  "[ADMIN][INCIDENTS] signing everyone out ends the session of another browser and keeps this one",
  POSTGRES,
  async ({ page, browser }) => {
    const owner = uniqueEmail("owner");
    await signInAs(page, owner);
    const other = await browser.newContext();
    const otherPage = await other.newPage();
    await signInAs(otherPage, owner);

    await page.getByRole("link", { name: "Incidents" }).click();
    await page.getByRole("button", { name: "Sign everyone out (you stay signed in here)" }).click();
    await page.getByLabel("Reason").fill("Admin laptop stolen");
    await page.getByRole("button", { name: "Yes, sign everyone out" }).click();
    await expect(
      page.getByRole("status").filter({ hasText: "You are still signed in here." }),
    ).toBeVisible();

    await otherPage.goto("/mailboxes");
    await expect(otherPage.getByRole("heading", { name: "Sign in to Mailwarden" })).toBeVisible();
    await page.goto("/mailboxes");
    await expect(page.getByRole("heading", { name: "Mailboxes" })).toBeVisible();
    await other.close();
  },
);

test(
  "[ADMIN][INCIDENTS] revoking every mailbox reaches 100% with a result per mailbox",
  POSTGRES,
  async ({ page }) => {
    const owner = uniqueEmail("owner");
    await signInAs(page, owner);
    await connectDemoMailbox(page);

    await page.getByRole("link", { name: "Incidents" }).click();
    await page.getByRole("button", { name: "Revoke every mailbox" }).click();
    await page.getByLabel("Reason").fill("Refresh token found in a log");
    await page.getByRole("button", { name: "Yes, revoke every mailbox" }).click();

    await expect(page.getByRole("progressbar", { name: "Revocation" })).toHaveAttribute(
      "aria-valuetext",
      "100%",
    );
    await expect(page.getByText("Revocation: done")).toBeVisible();
    const row = page.getByRole("row").filter({ hasText: owner });
    await expect(row).toContainText("Revoked at the provider");

    await page.goto("/mailboxes");
    await expect(page.getByRole("heading", { name: owner })).toBeVisible();
    await expect(page.getByText("Revoked", { exact: true })).toBeVisible();
  },
);

test.describe("on a phone", () => {
  test.use({ viewport: { width: 390, height: 844 } });

  test("[ADMIN][INCIDENTS] the switches come first, and each is one tap plus its confirmation", async ({
    page,
  }) => {
    await signInAs(page, uniqueEmail("owner"));
    await page.goto("/incidents");
    const pause = page.getByRole("button", { name: "Pause all sending" });
    await expect(pause).toBeVisible();
    const switchTop = (await pause.boundingBox())?.y ?? Number.POSITIVE_INFINITY;
    const keyTop =
      (await page.getByRole("heading", { name: "Rotate the token encryption key" }).boundingBox())
        ?.y ?? 0;
    expect(switchTop).toBeLessThan(keyTop);
    await pause.click();
    await expect(page.getByLabel("Reason")).toBeVisible();
    await page.getByRole("button", { name: "Cancel" }).click();
    await expect(page.getByLabel("Reason")).toHaveCount(0);
    await expect(page.getByRole("alert", { name: "Incident switches" })).toHaveCount(0);
  });
});
