import fs from "node:fs";
import { expect, type Page, test } from "@playwright/test";
import { addMember, ownOrgName, signInAs, switchUser, uniqueEmail } from "./helpers";

async function downloadJson(page: Page, link: string) {
  const [download] = await Promise.all([
    page.waitForEvent("download"),
    page.getByRole("link", { name: link }).click(),
  ]);
  return JSON.parse(fs.readFileSync((await download.path()) ?? "", "utf8"));
}

async function recordRequest(page: Page, kind: "export" | "erasure", email: string) {
  await page.goto("/privacy");
  await page.getByLabel("Request", { exact: true }).selectOption(kind);
  await page.getByLabel("About (email address)").fill(email);
  await page.getByRole("button", { name: "Record request" }).click();
  await expect(
    page.getByRole("heading", { name: kind === "export" ? "Export request" : "Erasure request" }),
  ).toBeVisible();
}

test("[PRIVACY] a compliance officer exports and erases a person, and downloads the receipt", async ({
  page,
}) => {
  const owner = uniqueEmail("owner");
  const person = uniqueEmail("person");
  const officer = uniqueEmail("officer");
  await signInAs(page, owner);
  await addMember(page, person, "sender");
  await switchUser(page, owner);
  await addMember(page, officer, "compliance");

  await page.getByRole("link", { name: "Data requests" }).click();
  await expect(page.getByRole("heading", { name: "Data requests" })).toBeVisible();

  await recordRequest(page, "export", person);
  await expect(page.getByText("A member (sender) with an account.")).toBeVisible();
  const exported = await downloadJson(page, "Download export");
  expect(exported).toMatchObject({
    schema: "mailwarden.subject-export",
    schemaVersion: 1,
    subject: { email: person, hasAccount: true },
    profile: { email: person },
    memberships: [{ orgName: ownOrgName(owner), role: "sender" }],
  });
  expect(exported.explanation.sessions).toMatch(/Never the session token/);

  await recordRequest(page, "erasure", person);
  await expect(page.getByText("remove their membership of this organisation;")).toBeVisible();
  await expect(
    page.getByText("keep their account: they belong to another organisation;"),
  ).toBeVisible();
  await page.getByLabel("Type erase to confirm").fill("erase");
  await page.getByRole("button", { name: "Erase now" }).click();
  // The page now shows the completed request with its receipt instead of the form.
  await expect(page.getByRole("heading", { name: "Receipt" })).toBeVisible();
  await expect(page.getByText("Activity log after erasure: verified intact.")).toBeVisible();
  const receipt = await downloadJson(page, "Download receipt");
  expect(receipt).toMatchObject({
    schema: "mailwarden.data-request-receipt",
    request: { kind: "erasure", status: "completed" },
    receipt: {
      by: officer,
      deleted: { memberships: 1, userAccount: false },
      chainVerification: { intact: true },
    },
  });
  expect(receipt.receipt.subject).toMatch(/^erased:[0-9a-f]{12}$/);
  expect(JSON.stringify(receipt)).not.toContain(person);

  // The list shows both requests done, the erased person only by pseudonym.
  await page.goto("/privacy");
  await expect(page.getByRole("cell", { name: person })).toHaveCount(0);
  await expect(page.getByText(/^Completed/)).toHaveCount(2);
  // The person is no longer a member.
  await switchUser(page, person);
  await expect(page.getByTestId("current-org")).toHaveText(ownOrgName(person));
});

test("[PRIVACY] a sender can reach neither the data requests pages nor their actions", async ({
  page,
}) => {
  const owner = uniqueEmail("owner");
  const sender = uniqueEmail("sender");
  await signInAs(page, owner);

  // The record action's request exactly as the owner's browser sends it (its id, the form with
  // the page's organisation).
  await page.goto("/privacy");
  const posted = page.waitForRequest(
    (r) => r.method() === "POST" && r.headers()["next-action"] !== undefined,
  );
  const subject = uniqueEmail("subject");
  await recordRequest(page, "export", subject);
  const recorded = await posted;
  const action = recorded.headers()["next-action"] ?? "";
  const requestUrl = page.url();
  const requestId = requestUrl.split("/").at(-1) ?? "";

  await addMember(page, sender, "sender");
  await expect(page.getByRole("link", { name: "Data requests" })).toHaveCount(0);
  for (const url of ["/privacy", `/privacy/${requestId}`]) {
    const response = await page.goto(url);
    expect(response?.status(), url).toBe(403);
    await expect(page.getByRole("heading", { name: "Not allowed" })).toBeVisible();
  }
  for (const url of [`/privacy/${requestId}/export`, `/privacy/${requestId}/receipt`]) {
    const response = await page.request.get(url);
    expect(response.status(), url).toBe(403);
  }
  // The same request sent again by the sender's script, about someone else.
  const stranger = uniqueEmail("stranger");
  const answer = await page.request.post("/privacy", {
    headers: {
      "next-action": action,
      accept: "text/x-component",
      "content-type": recorded.headers()["content-type"] ?? "",
    },
    data: (recorded.postData() ?? "").replaceAll(subject, stranger),
  });
  expect(await answer.text()).toContain("Your role does not allow this.");

  // Nothing was recorded.
  await switchUser(page, owner);
  await page.goto("/privacy");
  await expect(page.getByRole("heading", { name: "Data requests" })).toBeVisible();
  await expect(page.getByText(stranger)).toHaveCount(0);
});

test("[PRIVACY] a person downloads their own data from their profile", async ({ page }) => {
  const person = uniqueEmail("person");
  await signInAs(page, person);
  await page.getByRole("link", { name: "Your data" }).click();
  await expect(page.getByRole("heading", { name: "Your data", exact: true })).toBeVisible();
  const exported = await downloadJson(page, "Download my data");
  expect(exported).toMatchObject({
    schemaVersion: 1,
    scope: { kind: "self" },
    profile: { email: person },
    memberships: [{ orgName: ownOrgName(person), role: "owner" }],
    organizations: [{ name: ownOrgName(person) }],
  });
  expect(exported.sessions.length).toBeGreaterThan(0);
  expect(JSON.stringify(exported)).not.toMatch(/sessionToken|session_token/);
});
