import { randomInt, randomUUID } from "node:crypto";
import { sql } from "drizzle-orm";
import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { getDb } from "@/db";
import { writeAuditEvent } from "@/lib/audit/write";
import { CLIENT_ADDRESS_HEADER } from "@/lib/auth/client-address";
import { changeMemberRole, removeMember } from "@/lib/auth/members";
import { ensureDemoClients } from "@/lib/demo";
import { env } from "@/lib/env";
import { signEveryoneOut } from "@/lib/incidents/console";
import { EXPORT_BATCH as SUBJECT_BATCH } from "@/lib/privacy/export";
import { recordDataRequest } from "@/lib/privacy/requests";
import { auditEventsOf } from "@/lib/testing/audit";
import { memberContext, TEST_REQUEST } from "@/lib/testing/context";
import {
  createMember,
  createOwner,
  createSession,
  joinOrganization,
} from "@/lib/testing/factories";

// A streamed download is checked when it starts and may then run for minutes: each batch it
// reads checks again that its caller is still a member with the role that allowed it. Here the
// routes are called as Next calls them and their bodies read as a browser would, with the
// caller removed or demoted between two reads. The Next request context is the one thing
// substituted (as in request-info.test.ts): next/headers answers with a real session's cookie.
const request = vi.hoisted(() => {
  vi.resetModules();
  return { headers: {} as Record<string, string> };
});
vi.mock("next/headers", () => ({
  headers: async () => new Headers(request.headers),
  cookies: async () => {
    const [name = "", value = ""] = (request.headers.cookie ?? "").split("=");
    const jar = new Map(request.headers.cookie ? [[name, { name, value }]] : []);
    return { get: (n: string) => jar.get(n), getAll: () => [...jar.values()], set: () => {} };
  },
}));
vi.mock("next/cache", () => ({ revalidatePath: () => {}, revalidateTag: () => {} }));

const { GET: exportActivity } = await import("./(admin)/activity/export/route");
const { GET: exportSubject } = await import("./(admin)/privacy/[requestId]/export/route");
const { GET: exportOwnData } = await import("./(dashboard)/profile/export/route");

async function signedInAs(userId: string) {
  request.headers = {
    cookie: `authjs.session-token=${await createSession(userId)}`,
    [CLIENT_ADDRESS_HEADER]: `198.51.100.${randomInt(1, 255)}`,
    "user-agent": "vitest-download",
    host: "localhost:3000",
  };
  return request.headers;
}

/** `count` events in the organisation's log, each carrying `marker`, sealed into its chain. */
async function fillLog(orgId: string, count: number, marker: string, personal: object = {}) {
  const db = await getDb();
  await db.execute(sql`
    insert into audit_events (chain, org_id, occurred_at, actor_type, action, outcome, metadata, personal)
    select ${orgId}, ${orgId}, now(), 'system', 'job.started', 'success',
           jsonb_build_object('marker', ${marker}::text, 'n', i), ${JSON.stringify(personal)}::jsonb
    from generate_series(1, ${count}) as i`);
  // Any event sealed inline seals the backlog before it.
  await writeAuditEvent(db, {
    orgId,
    actor: { type: "system", label: "test" },
    action: "job.completed",
    outcome: "success",
  });
}

/** Reads what is left of a body: the text received, and whether it ended or failed. */
async function readRest(reader: ReadableStreamDefaultReader<Uint8Array>) {
  const decoder = new TextDecoder();
  let text = "";
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return { text, ended: "complete" as const };
      text += decoder.decode(value, { stream: true });
    }
  } catch {
    return { text, ended: "failed" as const };
  }
}

const occurrences = (text: string, needle: string) => text.split(needle).length - 1;

beforeAll(() => ensureDemoClients(env().dataDir));

afterEach(() => {
  request.headers = {};
});

describe("a streamed download stops when its caller loses access", () => {
  it("the activity export: an admin removed mid-stream gets no further batch, and the download fails", async () => {
    const owner = await createOwner("dl-owner");
    const admin = await createMember(owner.orgId, "admin", "dl-admin");
    const marker = `row-${randomUUID()}`;
    const total = 1200; // CSV is read 250 events at a time: five batches.
    await fillLog(owner.orgId, total, marker);
    const headers = await signedInAs(admin.id);
    const response = await exportActivity(
      new Request(new URL("/activity/export?format=csv", env().APP_URL), { headers }),
    );
    expect(response.status).toBe(200);
    const reader = (response.body as ReadableStream<Uint8Array>).getReader();
    const decoder = new TextDecoder();
    let received = "";
    for (let i = 0; i < 2; i++) {
      const { value } = await reader.read(); // the header line, then the first batch
      received += decoder.decode(value, { stream: true });
    }
    // The first batch: the organisation's first event, then the filler.
    expect(occurrences(received, marker)).toBe(249);

    await removeMember(await getDb(), memberContext(owner.orgId, owner.user, "owner"), admin.id);
    const rest = await readRest(reader);

    expect(rest.ended).toBe("failed");
    // At most the one batch read ahead while the first was being taken, before the removal.
    const delivered = occurrences(received + rest.text, marker);
    expect(delivered).toBeLessThanOrEqual(500);
    expect(delivered).toBeLessThan(total);
    const [stopped] = await auditEventsOf(owner.orgId, { action: "access.denied" });
    expect(stopped).toMatchObject({
      actorId: admin.id,
      targetId: "/activity/export",
      outcome: "denied",
      metadata: { role: null, permission: "readAudit", reason: "access_lost" },
    });
    const [exported] = await auditEventsOf(owner.orgId, { action: "audit.exported" });
    expect(exported).toMatchObject({ outcome: "failure", metadata: { complete: false } });
  }, 60_000);

  it("an officer's subject export: an officer demoted mid-stream gets no further page, and the download fails", async () => {
    const owner = await createOwner("dl-owner");
    const officer = await createMember(owner.orgId, "compliance", "dl-officer");
    const subject = `subject-${randomUUID().slice(0, 8)}@example.test`;
    const marker = `row-${randomUUID()}`;
    const total = 2 * SUBJECT_BATCH + 500; // three pages of the subject's events
    await fillLog(owner.orgId, total, marker, { email: subject });
    const officerCtx = {
      orgId: owner.orgId,
      actor: { type: "user" as const, id: officer.id, label: officer.email },
      role: "compliance" as const,
      request: TEST_REQUEST,
    };
    const recorded = await recordDataRequest(officerCtx, {
      kind: "export",
      email: subject,
      receivedAt: new Date(),
    });
    const headers = await signedInAs(officer.id);
    const response = await exportSubject(
      new Request(new URL(`/privacy/${recorded.id}/export`, env().APP_URL), { headers }),
      { params: Promise.resolve({ requestId: recorded.id }) },
    );
    expect(response.status).toBe(200);
    const reader = (response.body as ReadableStream<Uint8Array>).getReader();
    const first = await reader.read();
    const received = new TextDecoder().decode(first.value);
    expect(occurrences(received, marker)).toBeGreaterThan(0);

    // Now a sender: a role without handlePrivacy.
    await changeMemberRole(await getDb(), memberContext(owner.orgId, owner.user, "owner"), {
      userId: officer.id,
      role: "sender",
    });
    const rest = await readRest(reader);

    expect(rest.ended).toBe("failed");
    // Only the page being read when the role changed: never the pages after it.
    const text = received + rest.text;
    expect(occurrences(text, marker)).toBeLessThanOrEqual(SUBJECT_BATCH);
    expect(text.endsWith("]}\n")).toBe(false);
    const [stopped] = await auditEventsOf(owner.orgId, { action: "access.denied" });
    expect(stopped).toMatchObject({
      actorId: officer.id,
      targetId: "/privacy/[requestId]/export",
      metadata: { role: "sender", permission: "handlePrivacy", reason: "access_lost" },
    });
  }, 60_000);

  it("a person's own export: removed from an organisation while it streams, they get nothing of its part", async () => {
    const person = await createOwner("dl-self");
    const other = await createOwner("dl-other");
    await joinOrganization({
      orgId: other.orgId,
      inviterId: other.user.id,
      user: person.user,
      role: "sender",
    });
    const email = person.user.email ?? "";
    // Their own organisation comes first (oldest membership), with enough to stream for a while.
    await fillLog(person.orgId, SUBJECT_BATCH + 500, `own-${randomUUID()}`, { email });
    const otherMarker = `other-${randomUUID()}`;
    await fillLog(other.orgId, 10, otherMarker, { email });
    await signedInAs(person.user.id);
    const response = await exportOwnData();
    expect(response.status).toBe(200);
    const reader = (response.body as ReadableStream<Uint8Array>).getReader();
    const first = await reader.read();
    const received = new TextDecoder().decode(first.value);

    await removeMember(
      await getDb(),
      memberContext(other.orgId, other.user, "owner"),
      person.user.id,
    );
    const rest = await readRest(reader);

    expect(rest.ended).toBe("failed");
    expect(occurrences(received + rest.text, otherMarker)).toBe(0);
    const [stopped] = await auditEventsOf(other.orgId, { action: "access.denied" });
    expect(stopped).toMatchObject({
      actorId: person.user.id,
      targetId: "/profile/export",
      metadata: { role: null, permission: "view", reason: "access_lost" },
    });
  }, 60_000);

  it("the activity export: everyone signed out mid-stream (an intruder's session too) ends the download", async () => {
    const owner = await createOwner("dl-owner");
    const admin = await createMember(owner.orgId, "admin", "dl-intruder");
    const marker = `row-${randomUUID()}`;
    const total = 1200;
    await fillLog(owner.orgId, total, marker);
    const headers = await signedInAs(admin.id);
    const response = await exportActivity(
      new Request(new URL("/activity/export?format=csv", env().APP_URL), { headers }),
    );
    const reader = (response.body as ReadableStream<Uint8Array>).getReader();
    await reader.read(); // the header line
    await reader.read(); // the first batch

    // The admin is still a member with the same role: only their session ends.
    await signEveryoneOut({
      db: await getDb(),
      ctx: memberContext(owner.orgId, owner.user, "owner"),
      keepSessionToken: null,
      reason: "incident",
    });
    const rest = await readRest(reader);

    expect(rest.ended).toBe("failed");
    expect(occurrences(rest.text, marker)).toBeLessThanOrEqual(250);
    const [stopped] = await auditEventsOf(owner.orgId, { action: "access.denied" });
    expect(stopped).toMatchObject({
      actorId: admin.id,
      metadata: { role: "admin", permission: "readAudit", reason: "session_ended" },
    });
  }, 60_000);
});
