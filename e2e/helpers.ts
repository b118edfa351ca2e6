import { randomUUID } from "node:crypto";
import { expect, type Page } from "@playwright/test";

/** A fresh address per test: each test makes its own organisation and people. */
export function uniqueEmail(role: string): string {
  return `${role}-${randomUUID().slice(0, 8)}@example.test`;
}

/** Signs in through the demo provider's own login and consent pages. */
export async function signInAs(page: Page, email: string) {
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
