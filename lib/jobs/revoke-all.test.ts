import { and, eq, inArray, sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { getDb } from "@/db";
import { finishItem, listJobItems, markItemsStarted } from "@/db/queries/jobs";
import { auditEvents, jobs } from "@/db/schema";
import { env } from "@/lib/env";
import { cancelJobAudited } from "@/lib/incidents/console";
import { useRateLimits } from "@/lib/mail/testing";
import { getMailProvider } from "@/lib/oauth/providers";
import { openMailboxToken } from "@/lib/oauth/sealed";
import { connectDemoMailbox, type Person, readMailbox } from "@/lib/oauth/testing/fixtures";
import { useProviderTestbeds } from "@/lib/oauth/testing/testbeds";
import { revokeToken } from "@/lib/oauth/token-endpoint";
import { manualRemoval } from "@/lib/oauth/withdrawal-words";
import { memberContext } from "@/lib/testing/context";
import { createOwner } from "@/lib/testing/factories";
import {
  providerRevocationWarning,
  REVOKE_ALL,
  REVOKE_ALL_CONCURRENCY,
  startRevokeAll,
} from "./revoke-all";
import { MAX_ITEM_ATTEMPTS, runJob } from "./runner";

const beds = useProviderTestbeds();

// A test connects more mailboxes through the consent flow than a person may start in a minute.
let restoreLimits: (() => Promise<void>) | undefined;
beforeAll(() => {
  restoreLimits = useRateLimits({ oauthStart: { tokens: 1_000, window: "1 m" } });
});
afterAll(async () => {
  await restoreLimits?.();
});

const REQUEST = { ip: "203.0.113.5", userAgent: "vitest" };

async function connected(person: Person) {
  const address = `all-${Math.random().toString(36).slice(2, 10)}@example.test`;
  const { result } = await connectDemoMailbox(person, { email: address });
  if (result.kind !== "connected") throw new Error(`not connected: ${result.kind}`);
  const row = await readMailbox(result.mailboxId);
  return {
    id: result.mailboxId,
    address,
    refreshToken: openMailboxToken(row.id, "refresh_token", row.refreshTokenEnc ?? ""),
    accessToken: openMailboxToken(row.id, "access_token", row.accessTokenEnc ?? ""),
  };
}

async function start(owner: Person) {
  return startRevokeAll({
    db: await getDb(),
    ctx: memberContext(owner.orgId, owner.user, "owner", REQUEST),
    reason: "test",
  });
}

// Each test connects mailboxes through the real provider's login and consent pages.
describe("revoke every mailbox", { timeout: 120_000 }, () => {
  it("revokes each mailbox of the organisation at the provider, one result each, and leaves other organisations alone", async () => {
    const owner = await createOwner("revall");
    const stranger = await createOwner("revall-other");
    const boxes = [await connected(owner), await connected(owner), await connected(owner)];
    const theirs = await connected(stranger);
    const job = await start(owner);
    expect(job.total).toBe(3);

    const done = await runJob(await getDb(), job.id);
    expect(done?.status).toBe("done");
    expect(done?.done).toBe(3);
    const items = await listJobItems({ db: await getDb(), jobId: job.id });
    expect(items.map((i) => i.result)).toEqual(["revoked", "revoked", "revoked"]);
    for (const box of boxes) {
      const row = await readMailbox(box.id);
      expect(row.status).toBe("revoked");
      expect(row.refreshTokenEnc).toBeNull();
      expect(row.accessTokenEnc).toBeNull();
      expect((await beds.demo.introspect(box.refreshToken)).active).toBe(false);
      expect((await beds.demo.introspect(box.accessToken)).active).toBe(false);
    }
    expect((await readMailbox(theirs.id)).status).toBe("connected");
    expect((await beds.demo.introspect(theirs.refreshToken)).active).toBe(true);

    const events = await (await getDb())
      .select()
      .from(auditEvents)
      .where(
        and(
          eq(auditEvents.orgId, owner.orgId),
          inArray(auditEvents.action, ["job.started", "mailbox.revoked"]),
        ),
      );
    expect(events.filter((e) => e.action === "job.started")).toHaveLength(1);
    expect(events.filter((e) => e.action === "mailbox.revoked")).toHaveLength(3);
  });

  it("resumed after its process died, it redoes no finished mailbox and revokes none twice", async () => {
    const owner = await createOwner("revall-resume");
    const [finished, inFlight, waiting] = [
      await connected(owner),
      await connected(owner),
      await connected(owner),
    ];
    const db = await getDb();
    const job = await start(owner);
    // The dead process: it finished one mailbox, had sent the revocation of the next when it
    // died (the provider revoked it, the database never heard), and never reached the third.
    await db
      .update(jobs)
      .set({
        status: "running",
        leaseOwner: "dead-process",
        leaseUntil: new Date(Date.now() - 1000),
      })
      .where(eq(jobs.id, job.id));
    await finishItem({ db, jobId: job.id, itemId: finished.id, result: "revoked", detail: null });
    await markItemsStarted({ db, jobId: job.id, owner: "dead-process", itemIds: [inFlight.id] });
    expect((await revokeToken(beds.demo.provider, inFlight.refreshToken, "refresh_token")).ok).toBe(
      true,
    );

    const before = new Map(beds.demo.proxy.revokedTokens);
    const done = await runJob(db, job.id);
    expect(done?.status).toBe("done");
    const askedAgain = (token: string) =>
      (beds.demo.proxy.revokedTokens.get(token) ?? 0) - (before.get(token) ?? 0);
    expect(askedAgain(finished.refreshToken)).toBe(0);
    expect(askedAgain(inFlight.refreshToken)).toBe(0);
    expect(askedAgain(waiting.refreshToken)).toBe(1);
    // The finished one was not touched again: its tokens are still here (the dead process's
    // transaction is what would have destroyed them), the other two are destroyed.
    expect((await readMailbox(finished.id)).refreshTokenEnc).not.toBeNull();
    expect((await readMailbox(inFlight.id)).refreshTokenEnc).toBeNull();
    expect((await readMailbox(waiting.id)).refreshTokenEnc).toBeNull();
    expect((await beds.demo.introspect(waiting.refreshToken)).active).toBe(false);
  });

  it("a live process's job is not taken over, and a cancelled job revokes nothing more", async () => {
    const owner = await createOwner("revall-cancel");
    const box = await connected(owner);
    const db = await getDb();
    const job = await start(owner);
    await db
      .update(jobs)
      .set({
        status: "running",
        leaseOwner: "live-process",
        leaseUntil: new Date(Date.now() + 60_000),
      })
      .where(eq(jobs.id, job.id));
    expect(await runJob(db, job.id)).toBeNull();

    const cancelled = await cancelJobAudited({
      db,
      ctx: memberContext(owner.orgId, owner.user, "owner", REQUEST),
      jobId: job.id,
    });
    expect(cancelled?.status).toBe("cancelled");
    expect(await runJob(db, job.id)).toBeNull();
    expect((await readMailbox(box.id)).status).toBe("connected");
    expect((await beds.demo.introspect(box.refreshToken)).active).toBe(true);

    // Another organisation cannot cancel it.
    const stranger = await createOwner("revall-cancel-other");
    const again = await start(owner);
    expect(
      await cancelJobAudited({
        db,
        ctx: memberContext(stranger.orgId, stranger.user, "owner", REQUEST),
        jobId: again.id,
      }),
    ).toBeNull();
    expect(again.kind).toBe(REVOKE_ALL);
  });

  it("cancelled while it runs, it revokes no mailbox beyond those in flight: the others keep their tokens", async () => {
    const owner = await createOwner("revall-stop");
    const boxes: Array<Awaited<ReturnType<typeof connected>>> = [];
    for (let i = 0; i < 20; i++) boxes.push(await connected(owner));
    const db = await getDb();
    const job = await start(owner);
    // The provider holds every revocation until the test lets them through.
    let arrived = () => {};
    const firstArrived = new Promise<void>((resolve) => {
      arrived = resolve;
    });
    let release = () => {};
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    beds.demo.proxy.beforeRevocation = async () => {
      arrived();
      await released;
    };
    let cancelled: Awaited<ReturnType<typeof cancelJobAudited>>;
    let ended: Awaited<ReturnType<typeof runJob>>;
    try {
      const running = runJob(db, job.id);
      await firstArrived;
      const cancelling = cancelJobAudited({
        db,
        ctx: memberContext(owner.orgId, owner.user, "owner", REQUEST),
        jobId: job.id,
      });
      // PostgreSQL commits the cancel while the revocations in flight wait at the provider.
      // PGlite has one connection: the cancel waits in line behind the transaction in hand (and
      // those of the items already started), ahead of anything a worker does once released.
      if (env().DATABASE_URL) await cancelling;
      release();
      cancelled = await cancelling;
      ended = await running;
    } finally {
      beds.demo.proxy.beforeRevocation = null;
      release();
    }
    expect(cancelled?.status).toBe("cancelled");
    expect(ended?.status).toBe("cancelled");

    const rows = await Promise.all(boxes.map((b) => readMailbox(b.id)));
    const revoked = boxes.filter((_, i) => rows[i]?.status === "revoked");
    const kept = boxes.filter((_, i) => rows[i]?.status === "connected");
    // Every mailbox revoked was in flight when the cancel came: one per worker at most.
    expect(revoked.length).toBeGreaterThan(0);
    expect(revoked.length).toBeLessThanOrEqual(REVOKE_ALL_CONCURRENCY);
    expect(kept.length).toBe(boxes.length - revoked.length);
    for (const box of kept) {
      expect((await readMailbox(box.id)).refreshTokenEnc).not.toBeNull();
      expect((await beds.demo.introspect(box.refreshToken)).active).toBe(true);
    }
    const items = await listJobItems({ db, jobId: job.id });
    expect(items.filter((i) => i.state === "finished")).toHaveLength(revoked.length);
    expect(items.filter((i) => i.state === "pending")).toHaveLength(kept.length);
    const events = await db
      .select()
      .from(auditEvents)
      .where(and(eq(auditEvents.orgId, owner.orgId), eq(auditEvents.action, "mailbox.revoked")));
    expect(events).toHaveLength(revoked.length);
  });

  it("with the provider down, the job's end and the console say how many mailboxes were not revoked there", async () => {
    const owner = await createOwner("revall-down");
    const boxes = [await connected(owner), await connected(owner), await connected(owner)];
    const db = await getDb();
    const job = await start(owner);
    beds.demo.proxy.down = true;
    let ended: Awaited<ReturnType<typeof runJob>>;
    try {
      ended = await runJob(db, job.id);
    } finally {
      beds.demo.proxy.down = false;
    }
    expect(ended?.status).toBe("done");
    // The tokens are destroyed all the same (ARCHITECTURE.md), the grants still live there.
    for (const box of boxes) {
      expect((await readMailbox(box.id)).refreshTokenEnc).toBeNull();
      expect((await beds.demo.introspect(box.refreshToken)).active).toBe(true);
    }
    const events = await db
      .select()
      .from(auditEvents)
      .where(and(eq(auditEvents.orgId, owner.orgId), eq(auditEvents.action, "job.completed")));
    expect(events).toHaveLength(1);
    expect(events[0]?.outcome).toBe("failure");
    expect(events[0]?.metadata).toMatchObject({ total: 3, notRevokedAtProvider: 3 });

    const warning = await providerRevocationWarning({ db, orgId: owner.orgId, jobId: job.id });
    expect(warning).toMatch(/^3 mailboxes were not revoked at the provider/);
    expect(warning).toContain(manualRemoval(getMailProvider("demo")));
    for (const box of boxes) expect(warning).toContain(box.address);
  });

  it("a mailbox whose revocation fails is tried again; one that keeps failing keeps its tokens and the job ends failed, not done", async () => {
    const owner = await createOwner("revall-retry");
    const [once, always, fine] = [
      await connected(owner),
      await connected(owner),
      await connected(owner),
    ];
    const db = await getDb();
    // The database refuses the revocation's write for two mailboxes (their transaction rolls
    // back, tokens and all): once for one, every time for the other. A sequence is not rolled
    // back, so it counts the attempts.
    const tag = owner.orgId.replaceAll("-", "").slice(0, 12);
    await db.execute(sql.raw(`create sequence revall_once_${tag}`));
    await db.execute(
      sql.raw(`create function revall_refuse_${tag}() returns trigger language plpgsql as $$
        begin
          if new.id = '${always.id}' or (new.id = '${once.id}' and nextval('revall_once_${tag}') = 1) then
            raise exception 'injected: the database refused the write';
          end if;
          return new;
        end $$`),
    );
    await db.execute(
      sql.raw(
        `create trigger revall_refuse_${tag} before update on mailboxes for each row execute function revall_refuse_${tag}()`,
      ),
    );
    const job = await start(owner);
    const before = new Map(beds.demo.proxy.revokedTokens);
    let ended: Awaited<ReturnType<typeof runJob>>;
    try {
      ended = await runJob(db, job.id);
    } finally {
      await db.execute(sql.raw(`drop trigger revall_refuse_${tag} on mailboxes`));
      await db.execute(sql.raw(`drop function revall_refuse_${tag}()`));
      await db.execute(sql.raw(`drop sequence revall_once_${tag}`));
    }
    expect(ended?.status).toBe("failed");
    expect(ended?.error).toMatch(/^1 of 3 items failed/);
    const items = new Map(
      (await listJobItems({ db, jobId: job.id })).map((i) => [i.itemId, i] as const),
    );
    // Tried again: revoked, and the provider asked once (the retry saw the token was dead).
    expect(items.get(once.id)).toMatchObject({ state: "finished", result: "revoked", attempts: 1 });
    expect((await readMailbox(once.id)).status).toBe("revoked");
    expect((await readMailbox(once.id)).refreshTokenEnc).toBeNull();
    const asked = (token: string) =>
      (beds.demo.proxy.revokedTokens.get(token) ?? 0) - (before.get(token) ?? 0);
    expect(asked(once.refreshToken)).toBe(1);
    expect(items.get(fine.id)?.result).toBe("revoked");
    // Given up after its attempts, reported as such: still connected, tokens kept.
    expect(items.get(always.id)).toMatchObject({
      state: "finished",
      result: "error",
      attempts: MAX_ITEM_ATTEMPTS,
    });
    expect(items.get(always.id)?.detail).toMatch(/^Failed 3 times\. .*refused the write/);
    expect((await readMailbox(always.id)).status).toBe("connected");
    expect((await readMailbox(always.id)).refreshTokenEnc).not.toBeNull();

    // Started again, the mailbox left over is revoked and that job is done.
    const again = await start(owner);
    expect(again.total).toBe(1);
    expect((await runJob(db, again.id))?.status).toBe("done");
    expect((await readMailbox(always.id)).status).toBe("revoked");

    const events = await db
      .select()
      .from(auditEvents)
      .where(
        and(
          eq(auditEvents.orgId, owner.orgId),
          inArray(auditEvents.action, ["job.completed", "job.failed", "mailbox.revoked"]),
        ),
      );
    const about = (jobId: string) => events.filter((e) => e.targetId === jobId);
    expect(about(job.id).map((e) => [e.action, e.metadata.failed])).toEqual([["job.failed", 1]]);
    expect(about(again.id).map((e) => e.action)).toEqual(["job.completed"]);
    expect(events.filter((e) => e.action === "mailbox.revoked")).toHaveLength(3);
  });
});
