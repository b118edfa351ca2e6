import { expect, test } from "@playwright/test";
import { signInAs, signOut, uniqueEmail } from "./helpers";

const ADMIN_URLS = ["/members", "/activity", "/api-keys", "/mailboxes/connect/demo"];

test("[OWNER][MEMBERS] the first person owns a new organisation, adds a sender, and the server refuses the sender every admin URL", async ({
  page,
}) => {
  const owner = uniqueEmail("owner");
  const sender = uniqueEmail("sender");

  await signInAs(page, owner);
  await expect(page.getByTestId("current-role")).toHaveText("Owner");

  await page.getByRole("link", { name: "Members" }).click();
  await page.getByLabel("Email", { exact: true }).fill(sender);
  await page.getByLabel("Role", { exact: true }).selectOption("sender");
  await page.getByRole("button", { name: "Add person" }).click();
  await expect(page.getByText(`${sender} can now sign in and will join as sender.`)).toBeVisible();
  await signOut(page);

  // The demo provider remembers the owner's session: sign in again as someone else.
  await page.context().clearCookies();
  await signInAs(page, sender);
  await expect(page.getByTestId("current-role")).toHaveText("Sender");
  await expect(page.getByRole("link", { name: "Members" })).toHaveCount(0);

  for (const url of ADMIN_URLS) {
    const response = await page.goto(url);
    expect(response?.status(), url).toBe(403);
    await expect(page.getByRole("heading", { name: "Not allowed" })).toBeVisible();
  }
});

test("[OWNER][MEMBERS] the last owner cannot demote themselves", async ({ page }) => {
  const owner = uniqueEmail("owner");
  await signInAs(page, owner);
  await page.goto("/members");
  await page.getByLabel(`Role for ${owner}`).selectOption("admin");
  await page.getByRole("button", { name: "Change role" }).click();
  await expect(page.getByText("An organisation needs at least one owner")).toBeVisible();
  await page.reload();
  await expect(page.getByTestId("current-role")).toHaveText("Owner");
});

test("[OWNER][ACTIVITY] the activity log verifies its chain and lists the organisation's events", async ({
  page,
}) => {
  await signInAs(page, uniqueEmail("owner"));
  await page.goto("/activity");
  await expect(page.getByRole("heading", { name: "Activity log" })).toBeVisible();
  await expect(page.getByText(/^Chain intact · \d+ events$/)).toBeVisible();
  await expect(page.getByRole("cell", { name: "org.created" })).toBeVisible();
});

test("[HEALTH] reports the database and the demo mode", async ({ request }) => {
  const response = await request.get("/api/health");
  expect(response.status()).toBe(200);
  expect(await response.json()).toMatchObject({
    status: "ok",
    mode: "demo",
    database: { ok: true, driver: "pglite" },
  });
});
