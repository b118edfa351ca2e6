import { randomUUID } from "node:crypto";
import { expect, type Page, test } from "@playwright/test";
import { connectDemoMailbox, signInAs, uniqueEmail } from "./helpers";

const PAGES = [
  ["/", "Overview"],
  ["/mailboxes", "Mailboxes"],
  ["/mailboxes/connect/demo", "Connect a Demo mailbox"],
  ["/send", "Send a test message"],
  ["/messages", "Messages"],
  ["/api-keys", "API keys"],
  ["/webhooks", "Webhooks"],
  ["/members", "Members"],
  ["/activity", "Activity log"],
  ["/security", "Security"],
  ["/invitations", "Invitations"],
  ["/demo-inbox", "Demo inbox"],
] as const;

async function sidewaysOverflow(page: Page) {
  return page.evaluate(() => {
    const root = document.documentElement;
    return { scrollWidth: root.scrollWidth, clientWidth: root.clientWidth };
  });
}

test.describe("on a phone", () => {
  test.use({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });

  test("[PHONE] at 390 px every signed-in page fits the width and the navigation sits behind a menu button", async ({
    page,
  }, testInfo) => {
    test.setTimeout(120_000);
    const owner = uniqueEmail("owner");
    await signInAs(page, owner);
    await connectDemoMailbox(page);
    // Content in every list, so that tables and long values are measured too.
    await page.goto("/send");
    await page.getByLabel("To").fill("someone-with-a-rather-long-address@example.test");
    await page.getByLabel("Subject").fill(`Phone ${randomUUID()}`);
    await page.getByLabel("Message").fill("Sent from a narrow screen.");
    await page.getByRole("button", { name: "Send test message" }).click();
    await expect(page.getByRole("status").filter({ hasText: "Sent." })).toBeVisible();

    for (const [path, title] of PAGES) {
      await page.goto(path);
      await expect(page.getByRole("heading", { level: 1, name: title })).toBeVisible();
      await expect(page.getByRole("button", { name: "Sign out" })).toBeInViewport({ ratio: 1 });
      const { scrollWidth, clientWidth } = await sidewaysOverflow(page);
      expect(scrollWidth, `${path} scrolls sideways`).toBeLessThanOrEqual(clientWidth);
      if (path === "/" || path === "/mailboxes") {
        await page.screenshot({
          path: testInfo.outputPath(
            `phone${path === "/" ? "-overview" : path.replace("/", "-")}.png`,
          ),
          fullPage: true,
        });
      }
    }

    // The navigation is hidden until the menu button opens it, and closes again on navigation.
    await page.goto("/");
    const menu = page.getByRole("button", { name: "Menu" });
    const nav = page.getByRole("navigation", { name: "Main" });
    const controlled = await menu.getAttribute("aria-controls");
    expect(controlled).toBeTruthy();
    await expect(menu).toHaveAttribute("aria-expanded", "false");
    await expect(page.locator(`#${controlled}`)).toBeHidden();
    await menu.click();
    await expect(menu).toHaveAttribute("aria-expanded", "true");
    await expect(nav).toBeVisible();
    await expect(nav).toHaveAttribute("id", controlled ?? "");
    await nav.getByRole("link", { name: "Members" }).click();
    await expect(page.getByRole("heading", { level: 1, name: "Members" })).toBeVisible();
    await expect(menu).toHaveAttribute("aria-expanded", "false");
    await expect(nav).toBeHidden();

    // And from the keyboard: Enter opens it, Tab reaches the links, Escape closes it.
    await menu.focus();
    await page.keyboard.press("Enter");
    await expect(nav).toBeVisible();
    await page.keyboard.press("Tab");
    await expect(nav.getByRole("link", { name: "Overview" })).toBeFocused();
    await page.keyboard.press("Escape");
    await expect(nav).toBeHidden();
    await expect(menu).toBeFocused();
  });
});

test("[PHONE] on a wide screen the navigation is a sidebar without a menu button", async ({
  page,
}) => {
  await signInAs(page, uniqueEmail("owner"));
  await expect(page.getByRole("navigation", { name: "Main" })).toBeVisible();
  await expect(page.getByRole("button", { name: "Menu" })).toBeHidden();
});
