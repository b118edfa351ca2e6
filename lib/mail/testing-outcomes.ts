// Test only (it registers vitest hooks): a send testbed whose owner's organisation listens for
// every message outcome, for the test files that check an outcome's event and webhook together.
import { eq } from "drizzle-orm";
import { afterAll, beforeAll } from "vitest";
import { getDb } from "@/db";
import { webhookEndpoints } from "@/db/schema";
import { resetMailProviders } from "@/lib/oauth/providers";
import type { Person } from "@/lib/oauth/testing/fixtures";
import { memberContext } from "@/lib/testing/context";
import { createOwner } from "@/lib/testing/factories";
import { createEndpoint } from "@/lib/webhooks/endpoints";
import { type SendTestbed, startSendTestbed, useRateLimits } from "./testing";
import { closeAllMailboxTransports } from "./transport";

/**
 * For the whole test file: the demo provider and SMTP server, generous OAuth and mailbox limits,
 * and an owner with a webhook endpoint (nobody answers it) for `message.sent` and
 * `message.failed`. Its fields are set before the first test.
 */
export function useOutcomeTestbed(): { bed: SendTestbed; owner: Person } {
  const state = {} as { bed: SendTestbed; owner: Person };
  let restoreLimits: (() => Promise<void>) | undefined;
  let endpointId: string | undefined;
  beforeAll(async () => {
    state.bed = await startSendTestbed();
    restoreLimits = useRateLimits({
      oauthStart: { tokens: 1_000, window: "1 m" },
      oauthCallback: { tokens: 1_000, window: "1 m" },
      sendMailboxMinuteDemo: { tokens: 1_000, window: "1 m" },
    });
    state.owner = await createOwner();
    const { endpoint } = await createEndpoint(
      memberContext(state.owner.orgId, state.owner.user, "owner"),
      {
        url: "http://127.0.0.1:9/outcomes",
        description: "",
        events: ["message.sent", "message.failed"],
      },
    );
    endpointId = endpoint.id;
  });
  afterAll(async () => {
    // Its deliveries go with it, so no other test file's webhook sweep ever tries them.
    if (endpointId) {
      await (await getDb()).delete(webhookEndpoints).where(eq(webhookEndpoints.id, endpointId));
    }
    closeAllMailboxTransports();
    resetMailProviders();
    await restoreLimits?.();
    await state.bed?.close();
  });
  return state;
}
