import { expect, test } from "@playwright/test";
import {
  acceptInvitation,
  connectDemoMailbox,
  invite,
  ownOrgName,
  signInAs,
  switchUser,
  uniqueEmail,
} from "./helpers";

/** B already has an organisation of their own; then A's owner invites B's owner. */
async function ownerOfAInvitesOwnerOfB(page: import("@playwright/test").Page) {
  const ownerA = uniqueEmail("owner-a");
  const ownerB = uniqueEmail("owner-b");
  await signInAs(page, ownerB);
  await switchUser(page, ownerA);
  await invite(page, ownerB, "admin");
  await switchUser(page, ownerB);
  return { ownerA, ownerB, orgA: ownOrgName(ownerA), orgB: ownOrgName(ownerB) };
}

test("[OWNER][INVITATIONS] an invited owner stays in their own organisation, declines, and the mailbox they connect is theirs", async ({
  page,
}) => {
  const { ownerA, ownerB, orgA, orgB } = await ownerOfAInvitesOwnerOfB(page);

  // Signing in did not pull B into A.
  await expect(page.getByTestId("current-org")).toHaveText(orgB);
  await expect(page.getByTestId("current-role")).toHaveText("Owner");
  await expect(page.getByLabel("Switch organisation")).toHaveCount(0);

  await page.getByRole("link", { name: /^Invitations/ }).click();
  const row = page.getByRole("row").filter({ hasText: orgA });
  await expect(row).toContainText("Admin");
  await expect(row).toContainText(ownerA);
  await row.getByRole("button", { name: `Decline the invitation to ${orgA}` }).click();
  await expect(page.getByRole("status").filter({ hasText: "Invitation declined." })).toBeVisible();
  await expect(page.getByRole("row").filter({ hasText: orgA })).toHaveCount(0);

  await connectDemoMailbox(page);
  await expect(page.getByTestId("current-org")).toHaveText(orgB);
  await expect(page.getByRole("heading", { name: ownerB })).toBeVisible();

  await switchUser(page, ownerA);
  await page.goto("/mailboxes");
  await expect(page.getByText("No mailbox yet")).toBeVisible();
  await expect(page.getByRole("heading", { name: ownerB })).toHaveCount(0);
  await page.goto("/members");
  await expect(page.getByRole("row").filter({ hasText: ownerB })).toHaveCount(0);
});

test("[OWNER][INVITATIONS] accepting joins with the invited role and the switcher moves between both organisations", async ({
  page,
}) => {
  const { orgA, orgB } = await ownerOfAInvitesOwnerOfB(page);
  await expect(page.getByRole("link", { name: /^Invitations/ })).toContainText("1");

  await acceptInvitation(page, orgA);
  await expect(page.getByTestId("current-role")).toHaveText("Admin");
  const switcher = page.getByLabel("Switch organisation");
  await expect(switcher.locator("option")).toHaveText([`${orgB} (Owner)`, `${orgA} (Admin)`]);

  await switcher.selectOption({ label: `${orgB} (Owner)` });
  await page.getByRole("button", { name: "Switch" }).click();
  await expect(page.getByTestId("current-org")).toHaveText(orgB);
  await expect(page.getByTestId("current-role")).toHaveText("Owner");

  // The choice belongs to the session: it survives a reload.
  await page.reload();
  await expect(page.getByTestId("current-org")).toHaveText(orgB);

  await page.getByLabel("Switch organisation").selectOption({ label: `${orgA} (Admin)` });
  await page.getByRole("button", { name: "Switch" }).click();
  await expect(page.getByTestId("current-org")).toHaveText(orgA);
  await expect(page.getByTestId("current-role")).toHaveText("Admin");

  // A second tab keeps A's members page open; the first switches to B. The form left open for A
  // is refused instead of inviting into B, and a form on a page of B then works.
  const stale = await page.context().newPage();
  await stale.goto("/members");
  await expect(stale.getByTestId("current-org")).toHaveText(orgA);
  await page.getByLabel("Switch organisation").selectOption({ label: `${orgB} (Owner)` });
  await page.getByRole("button", { name: "Switch" }).click();
  await expect(page.getByTestId("current-org")).toHaveText(orgB);
  const newcomer = uniqueEmail("stale-tab");
  await stale.getByLabel("Email", { exact: true }).fill(newcomer);
  await stale.getByLabel("Role", { exact: true }).selectOption("sender");
  await stale.getByRole("button", { name: "Add person" }).click();
  await expect(stale.getByText(/belongs to another organisation/)).toBeVisible();
  await stale.reload();
  await expect(stale.getByRole("row").filter({ hasText: newcomer })).toHaveCount(0);
  await stale.close();
  // In the tab that switched, without a reload: the page's organisation moved with the switch.
  await page.getByRole("navigation").getByRole("link", { name: "Members", exact: true }).click();
  await page.getByLabel("Email", { exact: true }).fill(newcomer);
  await page.getByLabel("Role", { exact: true }).selectOption("sender");
  await page.getByRole("button", { name: "Add person" }).click();
  await expect(page.getByText(`${newcomer} is invited as sender`)).toBeVisible();
});
