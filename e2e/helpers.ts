import { randomUUID } from "node:crypto";
import { expect, type Page } from "@playwright/test";

/** A fresh address per test: each test makes its own organisation and people. */
export function uniqueEmail(role: string): string {
  return `${role}-${randomUUID().slice(0, 8)}@example.test`;
}

const watched = new WeakSet<Page>();

/** Fails the running test (softly) on any Content-Security-Policy violation the page reports. */
export function failOnCspViolations(page: Page) {
  if (watched.has(page)) return;
  watched.add(page);
  page.on("console", (message) => {
    expect
      .soft(message.text(), "a Content-Security-Policy violation")
      .not.toMatch(/Content Security Policy/i);
  });
}

/** Signs in through the demo provider's own login and consent pages. */
export async function signInAs(page: Page, email: string) {
  failOnCspViolations(page);
  await page.goto("/sign-in");
  await page.getByRole("button", { name: "Sign in with Demo provider" }).click();
  await page.getByLabel("Email").fill(email);
  await page.getByRole("button", { name: "Sign in" }).click();
  const allow = page.getByRole("button", { name: "Allow" });
  if (await allow.isVisible().catch(() => false)) await allow.click();
  await expect(page.getByRole("heading", { name: "Overview" })).toBeVisible();
}

export async function signOut(page: Page) {
  await page.getByRole("button", { name: "Sign out" }).click();
  await expect(page.getByRole("heading", { name: "Sign in to Mailwarden" })).toBeVisible();
}

/** Connects a demo mailbox for the signed-in owner (the provider session is already there). */
export async function connectDemoMailbox(page: Page) {
  await page.goto("/mailboxes");
  await page.getByRole("link", { name: /^Connect Demo/ }).click();
  await page.getByRole("button", { name: /^Continue to/ }).click();
  await page.getByRole("button", { name: "Allow" }).click();
  await expect(page.getByRole("status").filter({ hasText: "is connected" })).toBeVisible();
}

export async function addMember(
  page: Page,
  email: string,
  role: "sender" | "admin" | "compliance",
) {
  await page.goto("/members");
  await page.getByLabel("Email", { exact: true }).fill(email);
  await page.getByLabel("Role", { exact: true }).selectOption(role);
  await page.getByRole("button", { name: "Add person" }).click();
  await expect(page.getByText(`${email} can now sign in`)).toBeVisible();
}

export async function switchUser(page: Page, email: string) {
  await signOut(page);
  // The demo provider remembers the last person: start from clean cookies.
  await page.context().clearCookies();
  await signInAs(page, email);
}
