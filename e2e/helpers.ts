import { randomUUID } from "node:crypto";
import { expect, type Page } from "@playwright/test";

/** The journeys that also run against PostgreSQL and Redis (playwright.postgres.config.ts). */
export const POSTGRES = { tag: "@postgres" };

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

/** Sends a test message from the overview's link, to someone@example.test. */
export async function sendTestMessage(page: Page, from: string, subject: string) {
  await page.getByRole("link", { name: "Send a test message" }).click();
  await page.getByLabel("From mailbox").selectOption({ label: from });
  await page.getByLabel("To").fill("someone@example.test");
  await page.getByLabel("Subject").fill(subject);
  await page.getByLabel("Message").fill("It works.");
  await page.getByRole("button", { name: "Send test message" }).click();
}

/** The organisation a person gets at first sign-in is named after them (the demo provider's name). */
export function ownOrgName(email: string): string {
  return email.split("@")[0] ?? email;
}

/** Invites a person into the signed-in person's organisation; they still have to accept. */
export async function invite(
  page: Page,
  email: string,
  role: "owner" | "admin" | "sender" | "compliance",
) {
  await page.goto("/members");
  await page.getByLabel("Email", { exact: true }).fill(email);
  await page.getByLabel("Role", { exact: true }).selectOption(role);
  await page.getByRole("button", { name: "Add person" }).click();
  await expect(page.getByText(`${email} is invited as ${role}`)).toBeVisible();
}

/** Accepts the invitation from `orgName`; that organisation becomes the session's. */
export async function acceptInvitation(page: Page, orgName: string) {
  await page.goto("/invitations");
  await page.getByRole("button", { name: `Accept the invitation to ${orgName}` }).click();
  await expect(page.getByRole("heading", { name: "Overview" })).toBeVisible();
  await expect(page.getByTestId("current-org")).toHaveText(orgName);
}

/**
 * Adds a person to the signed-in owner's organisation the whole way: invites them, signs in as
 * them and accepts. Leaves the page signed in as the new member, in that organisation.
 */
export async function addMember(
  page: Page,
  email: string,
  role: "sender" | "admin" | "compliance",
) {
  const orgName = (await page.getByTestId("current-org").textContent()) ?? "";
  await invite(page, email, role);
  await switchUser(page, email);
  await acceptInvitation(page, orgName);
}

export async function switchUser(page: Page, email: string) {
  await signOut(page);
  // The demo provider remembers the last person: start from clean cookies.
  await page.context().clearCookies();
  await signInAs(page, email);
}
