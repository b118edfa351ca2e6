import { eq } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { getDb } from "@/db";
import { apiKeys, dataRequests, invitations } from "@/db/schema";
import { createApiKey } from "@/lib/mail/api-keys";
import { useRateLimits } from "@/lib/mail/testing";
import { recordDataRequest } from "@/lib/privacy/requests";
import { RateLimitedError } from "@/lib/ratelimit/runtime";
import { auditEventsOf } from "@/lib/testing/audit";
import { memberContext } from "@/lib/testing/context";
import { createOwner } from "@/lib/testing/factories";
import { inviteMember } from "./members";

// Sign-up is open: a stranger owns an organisation and could create rows from its console
// without end. Past the limit, nothing is stored and the refusal is in the log.

describe("rows created from the console are rate limited per person and organisation", () => {
  it("API keys, invitations and privacy requests: the third within the hour is refused, not stored", async () => {
    const { user, orgId } = await createOwner();
    const ctx = memberContext(orgId, user, "owner");
    const db = await getDb();
    const restore = useRateLimits(
      { consoleCreate: { tokens: 2, window: "1 h" } },
      { audited: true },
    );
    try {
      await createApiKey({ ctx, name: "one" });
      await inviteMember(db, ctx, { email: `a-${orgId}@example.test`, role: "sender" });
      const refusals = [
        await createApiKey({ ctx, name: "three" }).catch((e: unknown) => e),
        await inviteMember(db, ctx, { email: `b-${orgId}@example.test`, role: "sender" }).catch(
          (e: unknown) => e,
        ),
        await recordDataRequest(ctx, {
          kind: "export",
          email: `c-${orgId}@example.test`,
          receivedAt: new Date(),
        }).catch((e: unknown) => e),
      ];
      for (const refused of refusals) {
        expect(refused).toBeInstanceOf(RateLimitedError);
        expect((refused as RateLimitedError).limit).toBe("consoleCreate");
      }
      expect(await db.select().from(apiKeys).where(eq(apiKeys.orgId, orgId))).toHaveLength(1);
      expect(await db.select().from(invitations).where(eq(invitations.orgId, orgId))).toHaveLength(
        1,
      );
      expect(
        await db.select().from(dataRequests).where(eq(dataRequests.orgId, orgId)),
      ).toHaveLength(0);
      // The refusal's event is written after the refusal is thrown, not awaited by it.
      const refusedEvents = () => auditEventsOf(orgId, { action: "rate_limit.refused" });
      await expect.poll(async () => (await refusedEvents()).length).toBeGreaterThanOrEqual(1);
      expect((await refusedEvents())[0]?.metadata).toMatchObject({ limit: "consoleCreate" });
    } finally {
      await restore();
    }
  });
});
