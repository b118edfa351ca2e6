import { randomUUID } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { and, asc, eq, inArray, sql } from "drizzle-orm";
import { NextRequest } from "next/server";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { getDb } from "@/db";
import { insertMembership, upsertInvitation } from "@/db/queries/organizations";
import {
  apiKeys,
  auditEvents,
  dataRequests,
  invitations,
  mailboxes,
  memberships,
  messages,
  notices,
  organizations,
  sessions,
  switches,
  users,
  webhookEndpoints,
} from "@/db/schema";
import { writeAuditEvent } from "@/lib/audit/write";
import { demoInboxDir, ensureDemoClients } from "@/lib/demo";
import { env } from "@/lib/env";
import {
  connectMailbox,
  makeApiKey,
  type SendTestbed,
  sendRequest,
  startSendTestbed,
  useRateLimits,
} from "@/lib/mail/testing";
import { closeAllMailboxTransports } from "@/lib/mail/transport";
import { resetMailProviders } from "@/lib/oauth/providers";
import { authorizeInBrowser } from "@/lib/oauth/testing/demo";
import { type Person, startFor } from "@/lib/oauth/testing/fixtures";
import { memberContext } from "@/lib/testing/context";
import { createMember, createOwner } from "@/lib/testing/factories";
import { createEndpoint } from "@/lib/webhooks/endpoints";
import {
  ACCESS_MATRIX,
  CALLERS,
  type Caller,
  type HttpCall,
  type Outcome,
  type PageCall,
  type Row,
  type Target,
} from "./access-matrix";
import { signedIn } from "./access-matrix-shapes";
import { PAGE_ORG_FIELD } from "./page-org";

// The Next request context is the one thing substituted: next/headers answers with the calling
// person's cookie (a real Auth.js session row, looked up by the real auth()) or API key, and the
// cache invalidation that needs a render pass is a no-op. Everything behind it is real.
// Files share one module cache (vitest.config.ts): a module that another file loaded with the
// real next/headers would keep it, so this file starts from an empty cache.
const request = vi.hoisted(() => {
  vi.resetModules();
  return { headers: {} as Record<string, string> };
});
vi.mock("next/headers", () => ({
  headers: async () => new Headers(request.headers),
  cookies: async () => {
    const jar = new Map(
      (request.headers.cookie ?? "")
        .split(";")
        .map((pair) => pair.trim().split("="))
        .filter((pair): pair is [string, string] => pair.length === 2)
        .map(([name, value]) => [name, { name, value }] as const),
    );
    return { get: (name: string) => jar.get(name), getAll: () => [...jar.values()] };
  },
}));
vi.mock("next/cache", () => ({ revalidatePath: () => {}, revalidateTag: () => {} }));
// next.config.ts turns on experimental.authInterrupts, which is what lets forbidden() throw.
process.env.__NEXT_EXPERIMENTAL_AUTH_INTERRUPTS = "true";

const ROOT = process.cwd();
const SCANNED = ["app", "components", "lib"];
const HTTP_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];
const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi;

function filesUnder(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return entry.name === "node_modules" ? [] : filesUnder(full);
    return /\.tsx?$/.test(entry.name) && !/\.test\.tsx?$/.test(entry.name) ? [full] : [];
  });
}

const relative = (file: string) => path.relative(ROOT, file).split(path.sep).join("/");

// A "use server" directive opening the file (after comments); anywhere else it marks an inline
// action, which has no export to find.
const FILE_DIRECTIVE = /^(?:\s|\/\/[^\n]*\n|\/\*[\s\S]*?\*\/)*["']use server["']/;
const ANY_DIRECTIVE = /^\s*["']use server["'];?\s*$/gm;
const INLINE_ACTION = /function\s+(\w+)\s*\([^)]*\)\s*(?::[^{]+)?\{\s*["']use server["']/g;

type Discovered = { key: string; kind: Row["kind"] };

async function discover(): Promise<{ found: Discovered[]; unnamed: string[] }> {
  const found: Discovered[] = [];
  const unnamed: string[] = [];
  for (const file of SCANNED.flatMap((dir) => filesUnder(path.join(ROOT, dir)))) {
    const rel = relative(file);
    const source = fs.readFileSync(file, "utf8");
    const isActions = FILE_DIRECTIVE.test(source) || path.basename(file) === "actions.ts";
    const isRoute = rel.startsWith("app/") && path.basename(file) === "route.ts";
    const isPage = rel.startsWith("app/") && /^page\.tsx?$/.test(path.basename(file));
    if (!isActions) {
      const names = [...source.matchAll(INLINE_ACTION)].map((m) => m[1]);
      for (const name of names) found.push({ key: `${rel}#${name}`, kind: "inline" });
      if ((source.match(ANY_DIRECTIVE) ?? []).length > names.length) unnamed.push(rel);
    }
    if (!isActions && !isRoute && !isPage) continue;
    const mod = (await import(file)) as Record<string, unknown>;
    for (const [name, value] of Object.entries(mod)) {
      if (isActions && typeof value === "function")
        found.push({ key: `${rel}#${name}`, kind: "action" });
      if (isRoute && HTTP_METHODS.includes(name))
        found.push({ key: `${rel}#${name}`, kind: "route" });
      if (isPage && name === "default") found.push({ key: `${rel}#${name}`, kind: "page" });
    }
  }
  return { found, unnamed };
}

// ---- The two organisations ----

type Org = { owner: Person; orgId: string };
let bed: SendTestbed;
let restoreLimits: () => Promise<void>;
let a: Org;
let b: Org;
let aMailboxId: string;
const members = {} as Record<"admin" | "sender" | "compliance", Person>;
const sessionOf = {} as Record<Caller, string | null>;
const tokenOf = { a: "", b: "" };
let aSubject = "";

async function addMember(org: Org, role: "admin" | "sender" | "compliance"): Promise<Person> {
  const user = await createMember(org.orgId, role, `matrix-${role}`);
  return { user, orgId: org.orgId };
}

async function newSession(userId: string): Promise<string> {
  const sessionToken = randomUUID();
  // A full lifetime (the auth config's 7 days), so that reading it does not extend it.
  const expires = new Date(Date.now() + 7 * 24 * 3600_000);
  await (await getDb()).insert(sessions).values({ sessionToken, userId, expires });
  return sessionToken;
}

function personOf(caller: Caller): Person | null {
  if (caller === "owner") return a.owner;
  if (caller === "otherOrg") return b.owner;
  if (caller === "admin" || caller === "sender" || caller === "compliance") return members[caller];
  return null;
}

function orgOf(caller: Caller): string | null {
  if (caller === "signedOut") return null;
  return caller === "otherOrg" || caller === "otherOrgApiKey" ? b.orgId : a.orgId;
}

function headersOf(caller: Caller): Record<string, string> {
  const headers: Record<string, string> = { "user-agent": "vitest-matrix" };
  const session = sessionOf[caller];
  if (session) headers.cookie = `authjs.session-token=${session}`;
  if (caller === "apiKey") headers.authorization = `Bearer ${tokenOf.a}`;
  if (caller === "otherOrgApiKey") headers.authorization = `Bearer ${tokenOf.b}`;
  return headers;
}

/** Organisation A's fixtures, fresh rows on demand; a notice goes to the caller if in A. */
function targetFor(caller: Caller): Target {
  const person = orgOf(caller) === a.orgId ? (personOf(caller) ?? a.owner) : a.owner;
  return {
    orgId: a.orgId,
    mailboxId: aMailboxId,
    newMailbox: () => connectMailbox(a.owner),
    newMailboxNeedingAdmin: async () => {
      const id = await connectMailbox(a.owner);
      const db = await getDb();
      await db
        .update(mailboxes)
        .set({ status: "admin_action_required" })
        .where(eq(mailboxes.id, id));
      return id;
    },
    newApiKey: async () => (await makeApiKey(a.owner)).key.id,
    newMember: async (role) => (await addMember(a, role)).user.id,
    newInvitation: async () => {
      const row = await upsertInvitation({
        db: await getDb(),
        orgId: a.orgId,
        email: `invitee-${randomUUID().slice(0, 8)}@example.test`,
        role: "sender",
        invitedBy: a.owner.user.id,
      });
      if (!row) throw new Error("invitation insert returned nothing");
      return row.id;
    },
    newInvitationToMe: async () => {
      const db = await getDb();
      // Answering an invitation needs an address the sign-in provider confirmed.
      await db.update(users).set({ emailVerified: new Date() }).where(eq(users.id, person.user.id));
      const row = await upsertInvitation({
        db,
        orgId: a.orgId,
        email: person.user.email ?? "",
        role: "sender",
        invitedBy: a.owner.user.id,
      });
      if (!row) throw new Error("invitation insert returned nothing");
      return row.id;
    },
    newOrganizationOfMine: async () => {
      const other = await createOwner(`other-${randomUUID().slice(0, 8)}`);
      await insertMembership({
        db: await getDb(),
        orgId: other.orgId,
        userId: person.user.id,
        role: "sender",
      });
      return other.orgId;
    },
    newNotice: async () => {
      const [row] = await (await getDb())
        .insert(notices)
        .values({
          orgId: a.orgId,
          userId: person.user.id,
          kind: "matrix",
          title: "A notice for A",
          body: "Matrix fixture",
        })
        .returning({ id: notices.id });
      if (!row) throw new Error("notice insert returned nothing");
      return row.id;
    },
    newCallback: async () => {
      const flow = await authorizeInBrowser((await startFor(a.owner, "demo")).toString());
      return flow.callbackUrl.toString();
    },
    newEmail: () => `new-${randomUUID().slice(0, 8)}@example.test`,
    newAuditEvent: async () => {
      const row = await writeAuditEvent(await getDb(), {
        orgId: a.orgId,
        actor: { type: "user", id: a.owner.user.id, label: a.owner.user.email },
        action: "member.invited",
        outcome: "success",
        metadata: { fixture: "matrix" },
      });
      return String(row.id);
    },
    newDataRequest: async (kind, { completed = false } = {}) => {
      // About a fresh member, whom an erasure may take away without disturbing the fixtures.
      const subject = await addMember(a, "sender");
      const now = new Date();
      const [row] = await (await getDb())
        .insert(dataRequests)
        .values({
          orgId: a.orgId,
          kind,
          subjectEmail: subject.user.email ?? "",
          requestedBy: a.owner.user.id,
          receivedAt: now,
          dueAt: new Date(now.getTime() + 30 * 86_400_000),
          ...(completed
            ? { status: "completed", completedAt: now, receipt: { kind, matrix: true } }
            : {}),
        })
        .returning({ id: dataRequests.id });
      if (!row) throw new Error("data request insert returned nothing");
      return row.id;
    },
    newQueuedMessage: async () => {
      const [row] = await (await getDb())
        .insert(messages)
        .values({
          orgId: a.orgId,
          mailboxId: aMailboxId,
          senderType: "api_key",
          senderId: randomUUID(),
          recipients: { to: ["someone@example.test"], cc: [], bcc: [] },
          recipientCount: 1,
          subject: "matrix queued",
          status: "queued",
          nextAttemptAt: new Date(Date.now() + 86_400_000),
          deadlineAt: new Date(Date.now() + 2 * 86_400_000),
        })
        .returning({ id: messages.id });
      if (!row) throw new Error("message insert returned nothing");
      return row.id;
    },
    roomForWebhookEndpoint: async () => {
      const db = await getDb();
      await db.delete(webhookEndpoints).where(eq(webhookEndpoints.orgId, a.orgId));
    },
    newWebhookEndpoint: async () => {
      const db = await getDb();
      await db.delete(webhookEndpoints).where(eq(webhookEndpoints.orgId, a.orgId));
      const { endpoint } = await createEndpoint(memberContext(a.orgId, a.owner.user, "owner"), {
        url: `http://127.0.0.1:9/a-${randomUUID().slice(0, 8)}/hooks`,
        description: "A's endpoint",
        events: ["message.sent"],
      });
      return endpoint.id;
    },
  };
}

/** The same shape with ids that exist nowhere: what "no such thing" answers look like. */
function ghostTarget(): Target {
  const id = async () => randomUUID();
  return {
    orgId: randomUUID(),
    mailboxId: randomUUID(),
    newMailbox: id,
    newMailboxNeedingAdmin: id,
    newApiKey: id,
    newMember: id,
    newInvitation: id,
    newInvitationToMe: id,
    newOrganizationOfMine: id,
    newNotice: id,
    newCallback: async () =>
      `${env().APP_URL}/api/oauth/demo/callback?code=${randomUUID()}&state=${randomUUID()}`,
    newEmail: () => `new-${randomUUID().slice(0, 8)}@example.test`,
    newAuditEvent: async () => String(9_000_000_000 + Math.floor(Math.random() * 1_000_000)),
    newDataRequest: id,
    newQueuedMessage: id,
    newWebhookEndpoint: id,
    roomForWebhookEndpoint: async () => {},
  };
}

// ---- What an organisation holds, and what of it must never reach another ----

async function snapshot(orgId: string) {
  const db = await getDb();
  const memberRows = await db
    .select()
    .from(memberships)
    .where(eq(memberships.orgId, orgId))
    .orderBy(asc(memberships.userId));
  const ids = memberRows.map((m) => m.userId);
  const people = ids.length > 0 ? ids : [""];
  // Audit events (append-only; a refused attempt is rightly recorded) and OAuth transactions
  // (ten-minute state that a stranger presenting it rightly burns) are not compared.
  return {
    organization: await db.select().from(organizations).where(eq(organizations.id, orgId)),
    memberships: memberRows,
    users: await db.select().from(users).where(inArray(users.id, people)).orderBy(asc(users.id)),
    sessions: await db
      .select()
      .from(sessions)
      .where(inArray(sessions.userId, people))
      .orderBy(asc(sessions.sessionToken)),
    invitations: await db
      .select()
      .from(invitations)
      .where(eq(invitations.orgId, orgId))
      .orderBy(asc(invitations.id)),
    mailboxes: await db
      .select()
      .from(mailboxes)
      .where(eq(mailboxes.orgId, orgId))
      .orderBy(asc(mailboxes.id)),
    apiKeys: await db
      .select()
      .from(apiKeys)
      .where(eq(apiKeys.orgId, orgId))
      .orderBy(asc(apiKeys.id)),
    messages: await db
      .select()
      .from(messages)
      .where(eq(messages.orgId, orgId))
      .orderBy(asc(messages.id)),
    notices: await db
      .select()
      .from(notices)
      .where(eq(notices.orgId, orgId))
      .orderBy(asc(notices.id)),
    switches: await db
      .select()
      .from(switches)
      .where(eq(switches.orgId, orgId))
      .orderBy(asc(switches.id)),
    dataRequests: await db
      .select()
      .from(dataRequests)
      .where(eq(dataRequests.orgId, orgId))
      .orderBy(asc(dataRequests.id)),
    // Their deliveries are left out: the queue attempts them in the background, between cells.
    webhookEndpoints: await db
      .select()
      .from(webhookEndpoints)
      .where(eq(webhookEndpoints.orgId, orgId))
      .orderBy(asc(webhookEndpoints.id)),
  };
}
type Snapshot = Awaited<ReturnType<typeof snapshot>>;

/** Text that only someone who read the organisation's rows could show. */
function secretsOf(s: Snapshot): string[] {
  const values = [
    ...s.organization.map((o) => o.name),
    ...s.users.flatMap((u) => [u.email]),
    ...s.invitations.map((i) => i.email),
    ...s.mailboxes.map((m) => m.address),
    ...s.apiKeys.flatMap((k) => [k.name, k.prefix]),
    ...s.messages.map((m) => m.subject),
    ...s.webhookEndpoints.map((e) => e.url),
  ];
  return [...new Set(values.filter((v): v is string => typeof v === "string" && v.length >= 8))];
}

async function deniedCount(userId: string | undefined): Promise<number> {
  if (!userId) return 0;
  const [row] = await (await getDb())
    .select({ n: sql<number>`count(*)::int` })
    .from(auditEvents)
    .where(and(eq(auditEvents.actorId, userId), eq(auditEvents.action, "access.denied")));
  return row?.n ?? 0;
}

// ---- Calling things the way Next does ----

type Answer = { outcome: Outcome | "nothing"; text: string };

/** Every string reachable from a value (a React element's props included). */
function textOf(value: unknown, seen = new WeakSet<object>()): string {
  if (typeof value === "string") return value;
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  if (value instanceof Date) return value.toISOString();
  if (!value || typeof value !== "object" || seen.has(value)) return "";
  seen.add(value);
  const parts = Array.isArray(value) ? value : Object.values(value);
  return parts.map((part) => textOf(part, seen)).join(" ");
}

function thrownAnswer(error: unknown): Answer {
  const digest = (error as { digest?: unknown } | null)?.digest;
  if (typeof digest !== "string") throw error;
  if (digest.startsWith("NEXT_REDIRECT;")) {
    const location = digest.split(";")[2] ?? "";
    return { outcome: location.startsWith("/sign-in") ? 401 : "redirect", text: location };
  }
  const status = /^NEXT_HTTP_ERROR_FALLBACK;(\d+)$/.exec(digest)?.[1];
  if (status === "401" || status === "403" || status === "404") {
    return { outcome: Number(status) as Outcome, text: digest };
  }
  throw error;
}

async function callAction(file: string, name: string, form: Record<string, string | string[]>) {
  const fn = ((await import(path.join(ROOT, file))) as Record<string, unknown>)[name] as (
    ...args: unknown[]
  ) => Promise<unknown>;
  const data = new FormData();
  for (const [field, value] of Object.entries(form)) {
    for (const v of Array.isArray(value) ? value : [value]) data.append(field, v);
  }
  try {
    // The wrapper's (previous state, form) shape, or a plain form action.
    return { result: fn.length >= 2 ? await fn({}, data) : await fn(data) };
  } catch (error) {
    return { answer: thrownAnswer(error) };
  }
}

function actionAnswer(result: unknown, denied: boolean, ownChanged: boolean): Answer {
  const text = JSON.stringify(result ?? null);
  if (result === undefined) {
    // A plain form action answers nothing: what it did is read from the rows and the audit log.
    if (denied) return { outcome: 403, text };
    return { outcome: ownChanged ? "ok" : "nothing", text };
  }
  const r = result as { ok?: boolean; message?: string; fieldErrors?: unknown };
  if (r.ok === true) return { outcome: "ok", text };
  if (denied) return { outcome: 403, text };
  if (r.fieldErrors) return { outcome: 400, text };
  if (/session has ended/i.test(r.message ?? "")) return { outcome: 401, text };
  return { outcome: 404, text };
}

async function callRoute(
  file: string,
  method: string,
  row: Extract<Row, { kind: "route" }>,
  call: HttpCall,
  caller: Caller,
): Promise<Answer> {
  const handler = ((await import(path.join(ROOT, file))) as Record<string, unknown>)[method] as (
    req: NextRequest,
    ctx: { params: Promise<unknown> },
  ) => Promise<Response>;
  const req = new NextRequest(new URL(call.path, env().APP_URL), {
    method: call.method,
    headers: { ...call.headers, ...headersOf(caller) },
    ...(call.body === undefined ? {} : { body: call.body }),
  });
  const response = await handler(req, { params: Promise.resolve(call.params ?? {}) });
  const body = await response.text();
  const location = response.headers.get("location");
  if (response.status >= 300 && response.status < 400 && location) {
    const url = new URL(location, env().APP_URL);
    const outcome = row.outcomeOf
      ? row.outcomeOf(url)
      : url.pathname.startsWith("/sign-in")
        ? 401
        : "redirect";
    return { outcome, text: `${response.status} ${body}` };
  }
  const s = response.status;
  const outcome: Outcome | "nothing" =
    s >= 200 && s < 300
      ? "ok"
      : s === 401 || s === 403 || s === 404
        ? s
        : s < 500
          ? 400
          : "nothing";
  return { outcome, text: `${s} ${body}` };
}

async function callPage(file: string, call: PageCall): Promise<Answer> {
  const Page = ((await import(path.join(ROOT, file))) as { default: (props: unknown) => unknown })
    .default;
  try {
    const element = await Page({
      params: Promise.resolve(call.params ?? {}),
      searchParams: Promise.resolve(call.searchParams ?? {}),
    });
    return { outcome: "ok", text: textOf(element) };
  } catch (error) {
    return thrownAnswer(error);
  }
}

type Cell = {
  answer: Answer;
  before: Record<string, Snapshot>;
  after: Record<string, Snapshot>;
  denied: boolean;
};

type Called = { result?: unknown; answer?: Answer };

async function prepare(
  file: string,
  name: string,
  row: Exclude<Row, { kind: "inline" }>,
  caller: Caller,
  t: Target,
): Promise<() => Promise<Called>> {
  if (row.kind === "action") {
    // Sent from a page of the caller's own organisation, as every form is (components/page-org).
    const own = orgOf(caller);
    const form = { ...(own ? { [PAGE_ORG_FIELD]: own } : {}), ...(await row.call(t)) };
    return () => callAction(file, name, form);
  }
  if (row.kind === "route") {
    const call = await row.call(t);
    return async () => ({ answer: await callRoute(file, name, row, call, caller) });
  }
  const call = (await row.call?.(t)) ?? {};
  return async () => ({ answer: await callPage(file, call) });
}

async function runCell(
  key: string,
  row: Exclude<Row, { kind: "inline" }>,
  caller: Caller,
  t: Target,
): Promise<Cell> {
  const [file = "", name = ""] = key.split("#");
  const person = personOf(caller);
  // Fixtures first, so that the rows they add are in the "before" picture.
  const invoke = await prepare(file, name, row, caller, t);
  // Every call starts in the caller's own organisation, whatever an earlier call switched to.
  const session = sessionOf[caller];
  const own = orgOf(caller);
  // ... and signed in, whatever an earlier call (signing everyone out) ended.
  if (session && person) {
    await (await getDb())
      .insert(sessions)
      .values({
        sessionToken: session,
        userId: person.user.id,
        expires: new Date(Date.now() + 7 * 24 * 3600_000),
      })
      .onConflictDoNothing();
  }
  if (session && own) {
    await (await getDb())
      .update(sessions)
      .set({ activeOrgId: own })
      .where(eq(sessions.sessionToken, session));
  }
  const before = { [a.orgId]: await snapshot(a.orgId), [b.orgId]: await snapshot(b.orgId) };
  const deniedBefore = await deniedCount(person?.user.id);
  request.headers = headersOf(caller);
  let called: Called;
  try {
    called = await invoke();
  } finally {
    request.headers = {};
  }
  const after = { [a.orgId]: await snapshot(a.orgId), [b.orgId]: await snapshot(b.orgId) };
  const denied = (await deniedCount(person?.user.id)) > deniedBefore;
  const ownChanged = own !== null && JSON.stringify(before[own]) !== JSON.stringify(after[own]);
  const answer = called.answer ?? actionAnswer(called.result, denied, ownChanged);
  return { answer, before, after, denied };
}

/** "Nothing visible happened" is what a plain form action answers for 401 and 404 alike. */
function matches(actual: Answer["outcome"], wanted: Outcome): boolean {
  return actual === wanted || (actual === "nothing" && (wanted === 401 || wanted === 404));
}

beforeAll(async () => {
  await ensureDemoClients(env().dataDir);
  bed = await startSendTestbed();
  // The matrix makes many connections and sends from one address: the limits are not its subject.
  const plenty = { tokens: 10_000, window: "1 m" };
  restoreLimits = useRateLimits({
    oauthStart: plenty,
    oauthCallback: plenty,
    testSend: plenty,
    apiKey: plenty,
    sendMailboxMinuteDemo: plenty,
    webhookEndpointSave: plenty,
  });
  // Unique organisation names: each is a secret of its own organisation in the checks below.
  const ownerA = await createOwner(`alpha-${randomUUID().slice(0, 8)}`);
  const ownerB = await createOwner(`bravo-${randomUUID().slice(0, 8)}`);
  a = { owner: { user: ownerA.user, orgId: ownerA.orgId }, orgId: ownerA.orgId };
  b = { owner: { user: ownerB.user, orgId: ownerB.orgId }, orgId: ownerB.orgId };
  for (const role of ["admin", "sender", "compliance"] as const)
    members[role] = await addMember(a, role);
  await addMember(b, "admin");

  aMailboxId = await connectMailbox(a.owner, `a-box-${randomUUID().slice(0, 8)}@example.test`);
  await connectMailbox(b.owner, `b-box-${randomUUID().slice(0, 8)}@example.test`);
  tokenOf.a = (await makeApiKey(a.owner)).token;
  tokenOf.b = (await makeApiKey(b.owner)).token;

  // A has sent mail (a subject only A's people may see), in its log and in the demo inbox.
  const { POST } = await import("@/app/api/v1/messages/route");
  aSubject = `Confidential to A ${randomUUID().slice(0, 8)}`;
  const sent = await POST(
    sendRequest(
      {
        mailbox: aMailboxId,
        to: ["rcpt@example.test"],
        subject: aSubject,
        text: "A's business",
      },
      { token: tokenOf.a },
    ),
  );
  if (sent.status !== 201) throw new Error(`seed send failed: ${sent.status}`);
  fs.cpSync(demoInboxDir(bed.dataDir), demoInboxDir(env().dataDir), { recursive: true });

  for (const caller of CALLERS) {
    const person = personOf(caller);
    sessionOf[caller] = person ? await newSession(person.user.id) : null;
  }
});

afterAll(async () => {
  request.headers = {};
  closeAllMailboxTransports();
  resetMailProviders();
  await restoreLimits?.();
  await bed?.close();
});

describe("the access matrix covers everything callable", () => {
  it("has a row for every action, route handler and page, and names nothing else", async () => {
    const { found, unnamed } = await discover();
    expect(found.length).toBeGreaterThan(20);
    const rows = Object.keys(ACCESS_MATRIX);
    const missing = found.filter((f) => !rows.includes(f.key)).map((f) => f.key);
    const stale = rows.filter((key) => !found.some((f) => f.key === key));
    expect(missing, "add a row to lib/auth/access-matrix.ts for each").toEqual([]);
    expect(stale, "these rows name nothing that exists: remove or rename them").toEqual([]);
    const wrongKind = found.filter((f) => ACCESS_MATRIX[f.key]?.kind !== f.kind).map((f) => f.key);
    expect(wrongKind).toEqual([]);
    expect(unnamed, 'a "use server" function the test cannot name: use a named function').toEqual(
      [],
    );
  });
});

const CALLABLE = Object.entries(ACCESS_MATRIX).filter(
  (entry): entry is [string, Exclude<Row, { kind: "inline" }>] => entry[1].kind !== "inline",
);

describe.each(CALLABLE)("%s", (key, row) => {
  it.each([...CALLERS])("as %s", async (caller) => {
    const wanted = row.expect[caller];
    const { answer, before, after, denied } = await runCell(key, row, caller, targetFor(caller));
    expect(
      matches(answer.outcome, wanted),
      `${key} as ${caller}: wanted ${wanted}, got ${answer.outcome}: ${answer.text.slice(0, 400)}`,
    ).toBe(true);

    // Rows: another organisation's never change; the caller's own not after a 401 or 403.
    const own = orgOf(caller);
    for (const orgId of [a.orgId, b.orgId]) {
      if (orgId === own && !(answer.outcome === 401 || answer.outcome === 403)) continue;
      expect(after[orgId], `${orgId === a.orgId ? "A" : "B"}'s rows changed`).toEqual(
        before[orgId],
      );
    }
    // Reads: nothing of an organisation the caller does not belong to reaches the answer.
    for (const orgId of [a.orgId, b.orgId]) {
      if (orgId === own) continue;
      const snap = before[orgId];
      const leaked = snap ? secretsOf(snap).filter((s) => answer.text.includes(s)) : [];
      expect(leaked, `${key} as ${caller} shows another organisation's data`).toEqual([]);
    }
    // A refused role is recorded.
    if (wanted === 403 && row.kind !== "route") expect(denied, "refusal not audited").toBe(true);
    // A refusal of A's ids is the very answer that ids existing nowhere get: it tells the
    // caller nothing about what A holds.
    const refused = wanted === 400 || wanted === 404;
    if (refused && (caller === "otherOrg" || caller === "otherOrgApiKey")) {
      const ghost = await runCell(key, row, caller, ghostTarget());
      expect(answer.text.replace(UUID, "<id>")).toBe(ghost.answer.text.replace(UUID, "<id>"));
    }
  });
});

// The activity log's system view (events of no organisation) is for the deployment's operators,
// and none of the matrix's callers is one: asking for it is a 403, recorded, never the caller's
// own organisation's log instead. The rows above call these without `view`.
describe("the activity log's system view", () => {
  const refused = { owner: 403, admin: 403, sender: 403, compliance: 403 } as const;
  const variants: Array<[string, Exclude<Row, { kind: "inline" }>]> = [
    [
      "app/(signed-in)/(admin)/activity/page.tsx#default",
      {
        kind: "page",
        expect: signedIn(refused, 403),
        call: () => ({ searchParams: { view: "system" } }),
      },
    ],
    [
      "app/(signed-in)/(admin)/activity/[id]/page.tsx#default",
      {
        kind: "page",
        expect: signedIn(refused, 403),
        call: async (t) => ({
          params: { id: await t.newAuditEvent() },
          searchParams: { view: "system" },
        }),
      },
    ],
    [
      "app/(signed-in)/(admin)/activity/export/route.ts#GET",
      {
        kind: "route",
        expect: signedIn(refused, 403),
        call: () => ({ method: "GET", path: "/activity/export?format=csv&view=system" }),
      },
    ],
  ];
  it("is shown to an operator", async () => {
    const [key, row] = variants[0] ?? [];
    if (!key || !row) throw new Error("no page variant");
    const list = env().OPERATOR_EMAILS;
    // The settings are read once per process; A's owner is an operator for this test only.
    list.push((a.owner.user.email ?? "").toLowerCase());
    try {
      const { answer, denied } = await runCell(key, row, "owner", targetFor("owner"));
      expect(answer.outcome).toBe("ok");
      expect(answer.text).toContain("System events");
      expect(denied).toBe(false);
    } finally {
      list.pop();
    }
  });
  describe.each(variants)("%s?view=system", (key, row) => {
    it.each(["owner", "compliance", "otherOrg"] as const)("as %s: 403, audited", async (caller) => {
      const { answer, denied } = await runCell(key, row, caller, targetFor(caller));
      expect(answer.outcome, answer.text.slice(0, 400)).toBe(403);
      expect(denied, "refusal not audited").toBe(true);
    });
  });
});

// The matrix's read check cannot tell a page that shows nothing from one that shows the right
// things; for the demo inbox, whose folder holds every organisation's mail, say it outright.
describe("the demo inbox", () => {
  it("shows an organisation its own mail and not another's", async () => {
    const key = "app/(signed-in)/(dashboard)/demo-inbox/page.tsx#default";
    const row = ACCESS_MATRIX[key];
    if (row?.kind !== "page") throw new Error(`${key} is not a page row`);
    const mine = await runCell(key, row, "sender", targetFor("sender"));
    expect(mine.answer.text).toContain(aSubject);
    const theirs = await runCell(key, row, "otherOrg", targetFor("otherOrg"));
    expect(theirs.answer.outcome).toBe("ok");
    expect(theirs.answer.text).not.toContain(aSubject);
  });
});
