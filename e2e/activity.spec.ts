import fs from "node:fs";
import { expect, test } from "@playwright/test";
import {
  acceptInvitation,
  addMember,
  invite,
  ownOrgName,
  signInAs,
  switchUser,
  uniqueEmail,
} from "./helpers";

test("a compliance officer filters, pages, reads an event and downloads the CSV; a sender may not", async ({
  page,
}) => {
  const owner = uniqueEmail("owner");
  const sender = uniqueEmail("sender");
  const officer = uniqueEmail("compliance");
  await signInAs(page, owner);
  const orgName = ownOrgName(owner);

  // A key whose name is a spreadsheet formula: it reaches the log's metadata.
  await page.goto("/api-keys");
  await page.getByLabel("Name").fill('=HYPERLINK("x")');
  await page.getByRole("button", { name: "Create key" }).click();
  await expect(page.getByLabel("Your new API key")).toHaveValue(/^mwk_/);

  await invite(page, uniqueEmail("extra"), "sender");
  await invite(page, sender, "sender");
  await addMember(page, officer, "compliance");

  // Filter by action and today's date, two rows a page.
  const today = new Date().toISOString().slice(0, 10);
  await page.goto("/activity");
  await page.getByLabel("Action").selectOption({ label: "Member invited" });
  await page.getByLabel("From", { exact: true }).fill(today);
  await page.getByLabel("To", { exact: true }).fill(today);
  await page.getByRole("button", { name: "Filter" }).click();
  await expect(page).toHaveURL(/action=member\.invited/);
  await page.goto(`${page.url()}&size=2`);
  const rows = page.getByRole("row").filter({ hasText: "Member invited" });
  await expect(rows).toHaveCount(2);
  await expect(page.getByRole("row").filter({ hasText: "Message sent" })).toHaveCount(0);
  const firstPage = await rows.allTextContents();

  await page.getByRole("link", { name: "Older →" }).click();
  await expect(rows).toHaveCount(1);
  expect(firstPage).not.toContain(await rows.first().textContent());
  await page.getByRole("link", { name: "← Newer" }).click();
  await expect(rows).toHaveCount(2);
  expect(await rows.allTextContents()).toEqual(firstPage);

  // The newest invitation's details: who, from where, sealed or not.
  await page
    .getByRole("link", { name: /^Details of event/ })
    .first()
    .click();
  await expect(page.getByRole("heading", { name: "Member invited" })).toBeVisible();
  await expect(page.getByText("User agent")).toBeVisible();
  await expect(page.getByText("IP address")).toBeVisible();
  await expect(page.getByText(owner).first()).toBeVisible();

  // The CSV of the whole log: the formula arrives as text, never as a formula cell.
  await page.goto("/activity");
  const downloading = page.waitForEvent("download");
  await page.getByRole("link", { name: "Download CSV" }).click();
  const download = await downloading;
  const csv = fs.readFileSync((await download.path()) ?? "", "utf8");
  expect(csv.split("\n")[0]).toMatch(/^id,seq,occurred_at,/);
  expect(csv).toContain('=HYPERLINK(\\""x\\"")');
  expect(csv).not.toMatch(/(^|,)"?[=+\-@]/m);
  await page.goto("/activity?action=audit.exported");
  await expect(page.getByRole("row").filter({ hasText: "Activity log exported" })).toHaveCount(1);

  // A bad filter names its field instead of failing.
  await page.goto("/activity?from=yesterday");
  await expect(
    page.getByRole("alert").filter({ hasText: "This filter cannot be used" }),
  ).toContainText("from: must be a date like 2026-01-31");

  // The sender: 403 on the page and on the export route.
  await switchUser(page, sender);
  await acceptInvitation(page, orgName);
  await page.goto("/activity");
  await expect(page.getByRole("heading", { name: "Not allowed" })).toBeVisible();
  const refused = await page.request.get("/activity/export?format=csv");
  expect(refused.status()).toBe(403);
  expect(await refused.text()).not.toContain("HYPERLINK");
});

test("an owner sets the data retention periods; a bad one names its field and saves nothing", async ({
  page,
}) => {
  await signInAs(page, uniqueEmail("owner"));
  await page.goto("/activity");
  await page.getByRole("link", { name: "Data retention" }).click();
  await expect(page.getByRole("heading", { name: "Data retention" })).toBeVisible();
  const activity = page.getByLabel("Keep activity for (days)");
  const messages = page.getByLabel("Keep message recipients and subjects for (days)");
  const network = page.getByLabel("Keep IP addresses and user agents in activity for (days)");
  await expect(activity).toHaveValue("");
  await expect(messages).toHaveValue("90");
  await expect(network).toHaveValue("30");

  await messages.fill("0");
  await page.getByRole("button", { name: "Save" }).click();
  await expect(page.getByText("Keep recipients and subjects for at least 1 day.")).toBeVisible();
  await expect(messages).toHaveAttribute("aria-invalid", "true");
  await page.reload();
  await expect(messages).toHaveValue("90");

  await activity.fill("365");
  await messages.fill("14");
  await network.fill("");
  await page.getByRole("button", { name: "Save" }).click();
  await expect(
    page.getByText("Message recipients and subjects are removed after 14 days."),
  ).toBeVisible();
  await page.reload();
  await expect(activity).toHaveValue("365");
  await expect(messages).toHaveValue("14");
  await expect(network).toHaveValue("");
  await page.goto("/activity?action=settings.retention_changed");
  await expect(page.getByRole("row").filter({ hasText: "Retention period changed" })).toHaveCount(
    1,
  );
});
