import { eq, sql } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { getDb } from "@/db";
import { auditEvents } from "@/db/schema";
import { createOwner } from "@/lib/testing/factories";
import { withoutAddresses } from "./events";
import { verifyOrganizationChain } from "./read";
import { writeAuditEvent } from "./write";

describe("audit hash chain", () => {
  it("links every event to the previous one and detects an edited row", async () => {
    const db = await getDb();
    const { user, orgId } = await createOwner();
    for (let i = 0; i < 5; i++) {
      await writeAuditEvent(db, {
        orgId,
        actor: { type: "user", id: user.id },
        action: "switch.changed",
        outcome: "success",
        metadata: { i },
      });
    }
    expect(await verifyOrganizationChain(db, orgId)).toMatchObject({ count: 6, brokenAt: null });

    await db.execute(
      sql`update audit_events set outcome = 'failure' where org_id = ${orgId} and seq = 3`,
    );
    expect((await verifyOrganizationChain(db, orgId)).brokenAt).toBe(3);
  });

  it("detects an event moved to another organisation", async () => {
    const db = await getDb();
    const { user, orgId } = await createOwner();
    const other = await createOwner("other");
    await writeAuditEvent(db, {
      orgId,
      actor: { type: "user", id: user.id },
      action: "switch.changed",
      outcome: "success",
    });
    await db.execute(
      sql`update audit_events set org_id = ${other.orgId} where chain = ${orgId} and seq = 2`,
    );
    expect((await verifyOrganizationChain(db, orgId)).brokenAt).toBe(2);
  });

  it("detects an event moved into another era (2026 AD to 2026 BC), which to_char alone does not tell", async () => {
    const db = await getDb();
    const { orgId } = await createOwner();
    await db.execute(
      sql`update audit_events set occurred_at = occurred_at - interval '4051 years' where chain = ${orgId} and seq = 1`,
    );
    expect((await verifyOrganizationChain(db, orgId)).brokenAt).toBe(1);
  });

  it("detects that the newest event was deleted", async () => {
    const db = await getDb();
    const { user, orgId } = await createOwner();
    for (let i = 0; i < 3; i++) {
      await writeAuditEvent(db, {
        orgId,
        actor: { type: "user", id: user.id },
        action: "switch.changed",
        outcome: "success",
        metadata: { i },
      });
    }
    await db.execute(sql`delete from audit_events where chain = ${orgId} and seq = 4`);
    expect((await verifyOrganizationChain(db, orgId)).brokenAt).toBe(4);
  });

  it("keeps a gapless sequence under concurrent writers", async () => {
    const db = await getDb();
    const { user, orgId } = await createOwner();
    await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        writeAuditEvent(db, {
          orgId,
          actor: { type: "user", id: user.id },
          action: "switch.changed",
          outcome: "success",
          metadata: { i },
        }),
      ),
    );
    const rows = await db
      .select({ seq: auditEvents.seq })
      .from(auditEvents)
      .where(eq(auditEvents.orgId, orgId));
    expect(rows.map((r) => r.seq ?? 0).sort((a, b) => a - b)).toEqual(
      Array.from({ length: 21 }, (_, i) => i + 1),
    );
    expect((await verifyOrganizationChain(db, orgId)).brokenAt).toBeNull();
  });

  it("never stores credential-like metadata", async () => {
    const db = await getDb();
    const { user, orgId } = await createOwner();
    await writeAuditEvent(db, {
      orgId,
      actor: { type: "user", id: user.id },
      action: "oauth.token_refreshed",
      outcome: "success",
      metadata: {
        accessToken: "ya29.secret",
        refresh_token: "1//secret",
        clientSecret: "x",
        scope: "mail.send",
      },
    });
    const [row] = await db
      .select({ metadata: auditEvents.metadata })
      .from(auditEvents)
      .where(eq(auditEvents.action, "oauth.token_refreshed"))
      .orderBy(sql`id desc`)
      .limit(1);
    expect(row?.metadata).toEqual({ scope: "mail.send" });
  });

  it("keeps addresses out of metadata, in the personal fields the chain commits to by MAC", async () => {
    const db = await getDb();
    const { user, orgId } = await createOwner();
    const { id } = await writeAuditEvent(db, {
      orgId,
      actor: { type: "user", id: user.id, label: user.email },
      action: "member.invited",
      outcome: "success",
      metadata: { email: "invitee@example.test", role: "sender" },
    });
    const [row] = await db
      .select({
        metadata: auditEvents.metadata,
        personal: auditEvents.personal,
        personalMac: auditEvents.personalMac,
      })
      .from(auditEvents)
      .where(eq(auditEvents.id, id));
    expect(row).toMatchObject({
      metadata: { role: "sender" },
      personal: { email: "invitee@example.test" },
    });
    expect(row?.personalMac).toMatch(/^[0-9a-f]{64}$/);
  });
});

describe("withoutAddresses", () => {
  it("replaces every address-like token of a reply and keeps the codes and words", () => {
    expect(
      withoutAddresses('550 5.1.1 <bob@example.test>: Recipient "a.b@x.y" rejected (c@d)'),
    ).toBe('550 5.1.1 <[address]>: Recipient "[address]" rejected ([address])');
    expect(withoutAddresses("250 2.0.0 OK 1700000000 q12-abc.1 - gsmtp")).toBe(
      "250 2.0.0 OK 1700000000 q12-abc.1 - gsmtp",
    );
    expect(withoutAddresses(null)).toBeNull();
  });

  it("handles a long reply without address-like tokens or made of one", () => {
    const hostile = `${"a".repeat(500_000)} ${"@".repeat(500_000)}`;
    expect(withoutAddresses(hostile)).toBe(`${"a".repeat(500_000)} [address]`);
  });
});
