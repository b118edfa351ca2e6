import { randomUUID } from "node:crypto";
import { expect, test } from "@playwright/test";
import { expectNoAxeViolations } from "./axe";
import { uniqueEmail } from "./helpers";

test("[A11Y] every page an owner sees, and the demo provider's own pages, pass axe (WCAG 2.1 AA)", async ({
  page,
}) => {
  test.setTimeout(300_000);
  const owner = uniqueEmail("owner");

  await page.goto("/sign-in");
  await expect(page.getByRole("heading", { name: "Sign in to Mailwarden" })).toBeVisible();
  await expectNoAxeViolations(page);

  // The demo provider's login and consent pages are served by this app's demo mode.
  await page.getByRole("button", { name: "Sign in with Demo provider" }).click();
  await expect(page.getByLabel("Email")).toBeVisible();
  await expectNoAxeViolations(page);
  await page.getByLabel("Email").fill(owner);
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.getByRole("button", { name: "Allow" })).toBeVisible();
  await expectNoAxeViolations(page);
  await page.getByRole("button", { name: "Allow" }).click();

  await expect(page.getByRole("heading", { name: "Overview" })).toBeVisible();
  await expectNoAxeViolations(page);

  // Empty lists first, with what to do next.
  for (const [path, empty] of [
    ["/mailboxes", "No mailbox yet"],
    ["/send", "No connected mailbox yet"],
    ["/messages", "Nothing sent yet"],
    ["/api-keys", "No key yet"],
    ["/demo-inbox", "Nothing has arrived yet"],
    ["/invitations", "No invitations"],
  ] as const) {
    await page.goto(path);
    await expect(page.getByRole("heading", { name: empty })).toBeVisible();
    await expectNoAxeViolations(page);
  }

  await page.goto("/mailboxes");
  await page.getByRole("link", { name: /^Connect Demo/ }).click();
  await expect(page.getByRole("list", { name: "Requested permissions" })).toBeVisible();
  await expectNoAxeViolations(page);
  await page.getByRole("button", { name: /^Continue to/ }).click();
  await expect(page.getByRole("button", { name: "Allow" })).toBeVisible();
  await expectNoAxeViolations(page);
  await page.getByRole("button", { name: "Allow" }).click();
  await expect(page.getByRole("status").filter({ hasText: "is connected" })).toBeVisible();
  await expectNoAxeViolations(page);

  // A refused form: the invalid field must still be announced properly.
  await page.goto("/send");
  await page.getByRole("button", { name: "Send test message" }).click();
  await expect(page.getByLabel("To")).toHaveAttribute("aria-invalid", "true");
  await expectNoAxeViolations(page);
  const subject = `Axe ${randomUUID().slice(0, 8)}`;
  await page.getByLabel("To").fill("someone@example.test");
  await page.getByLabel("Subject").fill(subject);
  await page.getByLabel("Message").fill("Checked by axe.");
  await page.getByRole("button", { name: "Send test message" }).click();
  await expect(page.getByRole("status").filter({ hasText: "Sent." })).toBeVisible();
  await expectNoAxeViolations(page);

  await page.goto("/messages");
  await expect(page.getByRole("cell", { name: subject })).toBeVisible();
  await expectNoAxeViolations(page);

  await page.goto("/demo-inbox");
  await expect(page.getByRole("heading", { name: subject })).toBeVisible();
  await expectNoAxeViolations(page);

  await page.goto("/api-keys");
  await page.getByLabel("Name").fill("axe service");
  await page.getByRole("button", { name: "Create key" }).click();
  await expect(page.getByLabel("Your new API key")).toBeVisible();
  await expectNoAxeViolations(page);

  await page.goto("/members");
  await page.getByLabel("Email", { exact: true }).fill(uniqueEmail("invitee"));
  await page.getByRole("button", { name: "Add person" }).click();
  await expect(page.getByText("invited, not accepted yet")).toBeVisible();
  await expectNoAxeViolations(page);

  await page.goto("/activity");
  await expect(page.getByRole("heading", { name: "Activity log" })).toBeVisible();
  await expect(page.getByRole("table")).toBeVisible();
  await expectNoAxeViolations(page);

  await page.goto("/security");
  await expect(page.getByRole("heading", { name: "Security", level: 1 })).toBeVisible();
  await expectNoAxeViolations(page);
});
