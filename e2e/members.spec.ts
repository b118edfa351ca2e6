import { expect, test } from "@playwright/test";
import { acceptInvitation, invite, ownOrgName, signInAs, switchUser, uniqueEmail } from "./helpers";

const ADMIN_URLS = ["/members", "/activity", "/api-keys", "/mailboxes/connect/demo"];

test("[OWNER][MEMBERS] the first person owns a new organisation, invites a sender who accepts, and the server refuses the sender every admin URL", async ({
  page,
}) => {
  const owner = uniqueEmail("owner");
  const sender = uniqueEmail("sender");

  await signInAs(page, owner);
  await expect(page.getByTestId("current-role")).toHaveText("Owner");
  await expect(page.getByTestId("current-org")).toHaveText(ownOrgName(owner));

  await page.getByRole("link", { name: "Members" }).click();
  await page.getByLabel("Email", { exact: true }).fill(sender);
  await page.getByLabel("Role", { exact: true }).selectOption("sender");
  await page.getByRole("button", { name: "Add person" }).click();
  await expect(
    page.getByText(`${sender} is invited as sender: they join when they accept the invitation.`),
  ).toBeVisible();

  // Signing in joins nothing: the sender is in an organisation of their own until they accept.
  await switchUser(page, sender);
  await expect(page.getByTestId("current-org")).toHaveText(ownOrgName(sender));
  await expect(page.getByTestId("current-role")).toHaveText("Owner");
  await acceptInvitation(page, ownOrgName(owner));
  await expect(page.getByTestId("current-role")).toHaveText("Sender");
  await expect(page.getByRole("link", { name: "Members" })).toHaveCount(0);
  // The overview's next steps are only what a sender can do: send, not connect or invite.
  await expect(page.getByRole("link", { name: "Send a first message" })).toBeVisible();
  await expect(page.getByRole("link", { name: "Connect a mailbox" })).toHaveCount(0);
  await expect(page.getByRole("link", { name: "Add the people of your team" })).toHaveCount(0);

  for (const url of ADMIN_URLS) {
    const response = await page.goto(url);
    expect(response?.status(), url).toBe(403);
    await expect(page.getByRole("heading", { name: "Not allowed" })).toBeVisible();
  }
});

test("[OWNER][MEMBERS] the last owner is offered no way to demote or remove themselves", async ({
  page,
}) => {
  const owner = uniqueEmail("owner");
  await signInAs(page, owner);
  await page.goto("/members");
  const ownRow = page.getByRole("row").filter({ hasText: owner });
  await expect(ownRow.getByText("No changes you can make")).toBeVisible();
  await expect(page.getByLabel(`Role for ${owner}`)).toHaveCount(0);
  await expect(ownRow.getByRole("button")).toHaveCount(0);
});

test("[ADMIN][MEMBERS] an admin is offered no owner role and no change to an owner", async ({
  page,
}) => {
  const owner = uniqueEmail("owner");
  const admin = uniqueEmail("admin");
  await signInAs(page, owner);
  await invite(page, admin, "admin");
  await switchUser(page, admin);
  await acceptInvitation(page, ownOrgName(owner));
  await expect(page.getByTestId("current-role")).toHaveText("Admin");

  await page.goto("/members");
  const roles = page.getByLabel("Role", { exact: true }).locator("option");
  await expect(roles).toHaveText(["Admin", "Sender", "Compliance officer"]);
  const ownerRow = page.getByRole("row").filter({ hasText: owner });
  await expect(ownerRow.getByText("No changes you can make")).toBeVisible();
  await expect(page.getByLabel(`Role for ${owner}`)).toHaveCount(0);
  // The admin's own row offers leaving, not a new role.
  await expect(page.getByLabel(`Role for ${admin}`)).toHaveCount(0);
  await expect(page.getByRole("button", { name: "Leave this organisation" })).toBeVisible();
});

test("[AUTH] the session endpoint never hands the session cookie's value to scripts", async ({
  page,
}) => {
  await signInAs(page, uniqueEmail("owner"));
  const cookie = (await page.context().cookies()).find((c) => c.name.endsWith("session-token"));
  expect(cookie?.httpOnly).toBe(true);
  const response = await page.request.get("/api/auth/session");
  const body = await response.text();
  expect(JSON.parse(body).user.email).toContain("@example.test");
  expect(body).not.toContain(cookie?.value ?? "missing cookie");
  expect(body).not.toContain("sessionToken");
});

test("[OWNER][ACTIVITY] the activity log verifies its chain and lists the organisation's events", async ({
  page,
}) => {
  await signInAs(page, uniqueEmail("owner"));
  await page.goto("/activity");
  await expect(page.getByRole("heading", { name: "Activity log" })).toBeVisible();
  await expect(page.getByText(/^Chain intact · \d+ events$/)).toBeVisible();
  await expect(page.getByRole("cell", { name: "Organisation created" })).toBeVisible();
});

test("[HEALTH] reports each dependency and the demo mode", async ({ request }) => {
  const response = await request.get("/api/health");
  expect(response.status()).toBe(200);
  expect(await response.json()).toMatchObject({
    status: "ok",
    mode: "demo",
    dependencies: {
      database: { ok: true, detail: "pglite" },
      rateLimitStore: { ok: true },
      demoProvider: { ok: true },
      demoSmtp: { ok: true },
    },
  });
});
