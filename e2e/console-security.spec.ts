import { expect, test } from "@playwright/test";
import { addMember, connectDemoMailbox, signInAs, uniqueEmail } from "./helpers";

const isoIn = (days: number) => new Date(Date.now() + days * 86_400_000).toISOString().slice(0, 10);

test("[ADMIN][SECURITY] an admin enters a client secret expiring in 10 days and the page warns; a compliance officer reads without the form", async ({
  page,
}) => {
  const owner = uniqueEmail("owner");
  const admin = uniqueEmail("admin");
  const officer = uniqueEmail("compliance");
  await signInAs(page, owner);
  await addMember(page, admin, "admin");

  await page.getByRole("link", { name: "Security", exact: true }).click();
  await expect(page.getByRole("heading", { name: "Security", level: 1 })).toBeVisible();
  await expect(page.getByRole("heading", { name: /^20\. / })).toBeVisible();
  await expect(page.getByText("What we ask of everyone who uses this dashboard")).toBeVisible();

  const expiry = isoIn(10);
  await page.getByLabel("Google client secret expires on").fill(expiry);
  await page.getByLabel("Google app publishing status").selectOption({ label: "Testing" });
  await page.getByRole("button", { name: "Save" }).click();
  await expect(page.getByText("Saved.")).toBeVisible();

  const attention = page.locator("section", { has: page.locator("#attention") });
  await expect(
    attention.getByText(`Google client secret expires on ${expiry}, in 10 days.`, {
      exact: false,
    }),
  ).toBeVisible();
  await expect(attention.getByText(/refresh tokens after 7 days/)).toBeVisible();

  // The change is in the activity log.
  await page.getByRole("link", { name: "Activity log" }).click();
  await expect(
    page.getByRole("cell", { name: "OAuth client facts changed" }).first(),
  ).toBeVisible();

  await addMember(page, officer, "compliance");
  await page.getByRole("link", { name: "Security", exact: true }).click();
  await expect(
    page.getByText(/Google client secret expires on .* in 10 days/).first(),
  ).toBeVisible();
  await expect(page.getByRole("button", { name: "Save" })).toHaveCount(0);
  await expect(page.getByText("An owner or admin enters these.")).toBeVisible();
});

test("[OVERVIEW] the overview counts mailboxes by status and links to the filtered list", async ({
  page,
}) => {
  const owner = uniqueEmail("owner");
  await signInAs(page, owner);
  await expect(page.getByRole("link", { name: "0 connected" })).toBeVisible();
  await connectDemoMailbox(page);
  await page.getByRole("link", { name: "Overview" }).click();
  await expect(page.getByRole("rowheader", { name: "Last 24 hours" })).toBeVisible();
  await page.getByRole("link", { name: "1 connected" }).click();
  await expect(page).toHaveURL(/\/mailboxes\?status=connected$/);
  await expect(page.getByText("Showing 1 of 1 mailboxes: connected.")).toBeVisible();
  await expect(page.getByRole("heading", { name: owner })).toBeVisible();

  await page.getByRole("link", { name: "Overview" }).click();
  await page.getByRole("link", { name: "0 need reconnecting" }).click();
  await expect(page.getByText('No mailbox with the status "Needs reconnecting"')).toBeVisible();
});
