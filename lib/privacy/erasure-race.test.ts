import { eq } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { getDb } from "@/db";
import { memberships } from "@/db/schema";
import { connectDemoMailbox } from "@/lib/oauth/testing/fixtures";
import { useProviderTestbeds } from "@/lib/oauth/testing/testbeds";
import { auditEventsOf } from "@/lib/testing/audit";
import { memberContext } from "@/lib/testing/context";
import { createOwner, createUser, joinOrganization } from "@/lib/testing/factories";
import { eraseSubject, recordDataRequest } from "./requests";

// An erasure revokes the person's mailboxes at their providers before its one transaction:
// seconds in which roles can change. Who may erase whom is decided again under the membership
// lock, on the roles as they are then.

const beds = useProviderTestbeds();

describe("erasure while roles change", () => {
  it("a member made an administrator during the revocations is not erased by a compliance officer", async () => {
    const owner = await createOwner();
    const officer = await createUser("race-officer");
    const subject = await createUser("race-subject");
    for (const [user, role] of [
      [officer, "compliance"],
      [subject, "sender"],
    ] as const) {
      await joinOrganization({ orgId: owner.orgId, inviterId: owner.user.id, user, role });
    }
    const subjectEmail = subject.email ?? "";
    // A mailbox of the person's address: the erasure revokes it at the provider first.
    await connectDemoMailbox(owner, { email: subjectEmail });
    const asOfficer = memberContext(owner.orgId, officer, "compliance");
    const request = await recordDataRequest(asOfficer, {
      kind: "erasure",
      email: subjectEmail,
      receivedAt: new Date(),
    });
    const db = await getDb();
    beds.demo.proxy.beforeRevocation = async () => {
      await db.update(memberships).set({ role: "admin" }).where(eq(memberships.userId, subject.id));
    };
    try {
      const revocationsBefore = beds.demo.proxy.revocationCalls;
      expect(await eraseSubject(asOfficer, request.id)).toMatchObject({
        kind: "refused",
        reason: expect.stringMatching(/only an owner removes an owner or an administrator/),
      });
      expect(beds.demo.proxy.revocationCalls).toBeGreaterThan(revocationsBefore);
    } finally {
      beds.demo.proxy.beforeRevocation = null;
    }
    const still = await db
      .select({ role: memberships.role })
      .from(memberships)
      .where(eq(memberships.userId, subject.id));
    expect(still).toEqual([{ role: "admin" }]);
    const [refusal] = await auditEventsOf(owner.orgId, {
      action: "privacy.erasure_refused",
      targetId: request.id,
    });
    expect(refusal?.metadata).toMatchObject({ reason: "owner_only" });
  }, 60_000);
});
