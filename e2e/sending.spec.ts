import { randomUUID } from "node:crypto";
import { expect, test } from "@playwright/test";
import {
  addMember,
  connectDemoMailbox,
  POSTGRES,
  sendTestMessage,
  signInAs,
  uniqueEmail,
} from "./helpers";

test(
  "[SENDER][SEND] a sender sends a test message through a connected demo mailbox and it arrives in the demo inbox",
  POSTGRES,
  async ({ page }) => {
    const owner = uniqueEmail("owner");
    const sender = uniqueEmail("sender");
    const subject = `Hello from the dashboard ${randomUUID().slice(0, 8)}`;
    await signInAs(page, owner);
    await connectDemoMailbox(page);
    await addMember(page, sender, "sender");

    await sendTestMessage(page, owner, subject);
    await expect(
      page.getByRole("status").filter({ hasText: "Sent. The server replied: 250" }),
    ).toBeVisible();

    await page.getByRole("link", { name: "Demo inbox" }).click();
    await expect(page.getByRole("heading", { name: subject })).toBeVisible();
    await page.getByRole("link", { name: "Messages" }).click();
    await expect(page.getByRole("cell", { name: subject })).toBeVisible();
  },
);

test(
  "[ADMIN][API] an API key created in the browser sends through POST /api/v1/messages",
  POSTGRES,
  async ({ page }) => {
    const owner = uniqueEmail("owner");
    const subject = `Hello from a service ${randomUUID().slice(0, 8)}`;
    await signInAs(page, owner);
    await connectDemoMailbox(page);

    await page.getByRole("link", { name: "API keys" }).click();
    await page.getByLabel("Name").fill("billing service");
    await page.getByRole("button", { name: "Create key" }).click();
    const key = await page.getByLabel("Your new API key").inputValue();
    expect(key).toMatch(/^mwk_/);

    const response = await page.request.post("/api/v1/messages", {
      headers: { Authorization: `Bearer ${key}`, "Idempotency-Key": randomUUID() },
      data: {
        mailbox: owner,
        to: ["customer@example.test"],
        subject,
        text: "Invoice attached (not really).",
      },
    });
    expect(response.status()).toBe(201);
    const body = await response.json();
    expect(body).toMatchObject({ status: "sent" });
    expect(JSON.stringify(body)).not.toContain(key);

    await page.goto("/demo-inbox");
    await expect(page.getByRole("heading", { name: subject })).toBeVisible();
    await page.goto("/api-keys");
    await expect(page.getByRole("cell", { name: "billing service", exact: true })).toBeVisible();
    await expect(page.getByLabel("Your new API key")).toHaveCount(0);
  },
);

test("[SENDER][SEND] a hostile subject gets a field error and nothing arrives", async ({
  page,
}) => {
  const owner = uniqueEmail("owner");
  await signInAs(page, owner);
  await connectDemoMailbox(page);
  await page.goto("/demo-inbox");
  const before = await page.getByRole("heading", { level: 2 }).count();

  await page.goto("/send");
  await page.getByLabel("To").fill("someone@example.test");
  await page.getByLabel("Message").fill("Body");
  // A text input strips line breaks, so an attacker swaps it for a textarea first.
  await page.locator("#subject").evaluate((input) => {
    const textarea = document.createElement("textarea");
    textarea.id = "subject";
    textarea.name = "subject";
    input.replaceWith(textarea);
  });
  await page.locator("#subject").fill("Hi\r\nBcc: victim@evil.test");
  await page.getByRole("button", { name: "Send test message" }).click();

  await expect(page.getByRole("alert").filter({ hasText: "Nothing was sent" })).toBeVisible();
  await expect(page.locator("#subject-error")).toBeVisible();
  await page.goto("/demo-inbox");
  await expect(page.getByRole("heading", { level: 2 })).toHaveCount(before);
});
