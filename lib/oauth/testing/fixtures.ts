// Test-only helpers around the OAuth domain: connect a mailbox for real, or insert one as it
// would be stored, and read rows back the way an attacker with database access would.
import { randomUUID } from "node:crypto";
import { eq } from "drizzle-orm";
import { getDb } from "@/db";
import { type MailboxStatus, mailboxes, type ProviderId } from "@/db/schema";
import { memberContext } from "@/lib/testing/context";
import { completeConnect } from "../callback";
import { startConnect } from "../connect";
import { sealGrant } from "../grant-columns";
import { authorizeInBrowser, type BrowserOptions } from "./demo";

export const REQUEST = { ip: "203.0.113.7", userAgent: "vitest" };

export type Person = { user: { id: string; email: string | null }; orgId: string };

export async function startFor(person: Person, providerId: ProviderId, mailboxId?: string) {
  const { url } = await startConnect({
    providerId,
    ctx: memberContext(person.orgId, person.user, "owner", REQUEST),
    ...(mailboxId ? { mailboxId } : {}),
  });
  return new URL(url);
}

export async function callbackFor(person: Person | null, callbackUrl: URL, providerId = "demo") {
  return completeConnect({
    providerId,
    callbackUrl,
    userId: person?.user.id ?? null,
    request: REQUEST,
  });
}

/** The whole connect flow against the real demo provider. */
export async function connectDemoMailbox(
  person: Person,
  browser: BrowserOptions & { mailboxId?: string } = {},
) {
  const url = await startFor(person, "demo", browser.mailboxId);
  const flow = await authorizeInBrowser(url.toString(), browser);
  const result = await callbackFor(person, flow.callbackUrl);
  return { url, result, flow };
}

export async function readMailbox(mailboxId: string) {
  const db = await getDb();
  const [row] = await db.select().from(mailboxes).where(eq(mailboxes.id, mailboxId));
  if (!row) throw new Error(`mailbox ${mailboxId} not found`);
  return row;
}

export async function setMailbox(mailboxId: string, set: Partial<typeof mailboxes.$inferInsert>) {
  const db = await getDb();
  await db.update(mailboxes).set(set).where(eq(mailboxes.id, mailboxId));
}

export async function expireAccessToken(mailboxId: string) {
  await setMailbox(mailboxId, { accessTokenExpiresAt: new Date(Date.now() - 60_000) });
}

/** A mailbox row as completeConnect would store it, for providers we cannot reach (Microsoft). */
export async function insertMailboxRow(opts: {
  person: Person;
  provider: ProviderId;
  address?: string;
  accessToken?: string;
  refreshToken?: string;
  expiresAt?: Date;
  status?: MailboxStatus;
  scopes?: string[];
}) {
  const id = randomUUID();
  const db = await getDb();
  await db.insert(mailboxes).values({
    id,
    orgId: opts.person.orgId,
    connectedBy: opts.person.user.id,
    provider: opts.provider,
    address: opts.address ?? `${id.slice(0, 8)}@contoso.example`,
    status: opts.status ?? "connected",
    ...sealGrant(id, {
      accessToken: opts.accessToken ?? `at-${id}`,
      expiresAt: opts.expiresAt ?? new Date(Date.now() - 60_000),
      refreshToken: opts.refreshToken ?? `rt-${id}`,
      scopes: opts.scopes ?? [],
    }),
  });
  return id;
}
