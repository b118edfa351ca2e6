import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import path from "node:path";
import { createInterface } from "node:readline";
import { eq, sql } from "drizzle-orm";
import { afterEach, describe, expect, it } from "vitest";
import { getDb, type Tx } from "@/db";
import { lockAccountGrants } from "@/db/queries/mailboxes";
import { mailboxes } from "@/db/schema";
import { auditEventsOf } from "@/lib/testing/audit";
import { memberContext } from "@/lib/testing/context";
import { createOwner } from "@/lib/testing/factories";
import type { CallbackResult } from "./callback";
import { sealGrant } from "./grant-columns";
import { registerMailProvider, resetMailProviders } from "./providers";
import { revokeMailbox } from "./revoke";
import { openMailboxToken } from "./sealed";
import { authorizeInBrowser } from "./testing/demo";
import {
  callbackFor,
  connectDemoMailbox,
  expireAccessToken,
  type Person,
  REQUEST,
  readMailbox,
  setMailbox,
  startFor,
} from "./testing/fixtures";
import { useProviderTestbeds } from "./testing/testbeds";
import { revokeToken } from "./token-endpoint";
import { getAccessToken } from "./tokens";

const beds = useProviderTestbeds();

// PGlite is one process per data folder, so the cross-process race needs PostgreSQL.
describe.skipIf(!process.env.DATABASE_URL)("getAccessToken across two processes", () => {
  function startWorker(mailboxId: string, calls: number) {
    const child = spawn(
      "npx",
      ["tsx", "--conditions=react-server", path.join("lib", "oauth", "testing", "race-worker.ts")],
      {
        env: {
          ...process.env,
          MAILWARDEN_RACE: JSON.stringify({
            issuer: beds.demo.issuer,
            clientId: beds.demo.clientId,
            clientSecret: beds.demo.clientSecret,
            tokenEndpoint: beds.demo.provider.tokenEndpoint,
            mailboxId,
            calls,
          }),
        },
        stdio: ["pipe", "pipe", "pipe"],
      },
    ) as ChildProcessWithoutNullStreams;
    let stderr = "";
    child.stderr.on("data", (chunk) => {
      stderr += chunk;
    });
    const lines = createInterface({ input: child.stdout });
    const ready = new Promise<void>((resolve, reject) => {
      lines.on("line", (line) => line === "ready" && resolve());
      child.once("exit", (code) => reject(new Error(`worker exited (${code}): ${stderr}`)));
    });
    const result = new Promise<{ tokens: string[]; errors: string[] }>((resolve, reject) => {
      lines.on("line", (line) => line.startsWith("{") && resolve(JSON.parse(line)));
      child.once(
        "exit",
        (code) => code !== 0 && reject(new Error(`worker failed (${code}): ${stderr}`)),
      );
    });
    return { ready, result, go: () => child.stdin.write("go\n") };
  }

  it("100 calls here and 100 in another process cause exactly one refresh", async () => {
    const owner = await createOwner();
    const { result } = await connectDemoMailbox(owner, { email: "race@example.test" });
    if (result.kind !== "connected") throw new Error(`not connected: ${result.kind}`);
    const id = result.mailboxId;
    const oldRefresh = openMailboxToken(
      id,
      "refresh_token",
      (await readMailbox(id)).refreshTokenEnc ?? "",
    );
    await expireAccessToken(id);

    const worker = startWorker(id, 100);
    await worker.ready;
    // Held long enough that the other process is surely waiting on the row lock meanwhile.
    beds.demo.proxy.refreshDelayMs = 400;
    const before = beds.demo.proxy.refreshCalls;
    worker.go();
    const here = await Promise.allSettled(Array.from({ length: 100 }, () => getAccessToken(id)));
    const there = await worker.result;
    beds.demo.proxy.refreshDelayMs = 0;

    expect(here.filter((r) => r.status === "rejected")).toEqual([]);
    expect(there.errors).toEqual([]);
    expect(beds.demo.proxy.refreshCalls).toBe(before + 1);
    const tokens = new Set([
      ...here.flatMap((r) => (r.status === "fulfilled" ? [r.value.accessToken] : [])),
      ...there.tokens,
    ]);
    expect(tokens.size).toBe(1);

    const row = await readMailbox(id);
    expect(row).toMatchObject({ status: "connected", failureCount: 0 });
    const newRefresh = openMailboxToken(id, "refresh_token", row.refreshTokenEnc ?? "");
    expect(newRefresh).not.toBe(oldRefresh);
    expect(await beds.demo.introspect(newRefresh)).toMatchObject({ active: true });
  }, 60_000);
});

// Google ends every grant of an account when any one of its tokens is revoked. A revoke of the
// account's mailbox that reaches Google after a concurrent connect's code was redeemed ends the
// grant that connect is about to store: it must not be stored as connected.
describe("revoke while a connect of the same account is being completed (Google-like)", () => {
  afterEach(() => {
    beds.demo.proxy.afterCodeExchange = null;
    beds.demo.proxy.beforeRevocation = null;
    resetMailProviders();
    registerMailProvider(beds.demo.provider);
  });

  const email = () => `race-${Math.random().toString(36).slice(2, 10)}@example.test`;

  function useGoogleLikeProvider() {
    registerMailProvider({ ...beds.demo.provider, revocationEndsAccountGrants: true });
  }

  function revoke(person: Person, mailboxId: string) {
    return revokeMailbox({
      ctx: memberContext(person.orgId, person.user, "owner", REQUEST),
      mailboxId,
    });
  }

  /** Between the code's redemption and the store: the revoke runs, and Google ends the fresh grant with it. */
  function revokeDuringExchange(person: Person, mailboxId: string) {
    const revoked: Array<{ providerResult: string }> = [];
    beds.demo.proxy.afterCodeExchange = async () => {
      beds.demo.proxy.afterCodeExchange = null;
      const fresh = beds.demo.proxy.issued.at(-1);
      revoked.push(await revoke(person, mailboxId));
      // The demo provider ends only the revoked grant; Google would end this one too.
      await revokeToken(beds.demo.provider, fresh?.refreshToken ?? "", "refresh_token");
    };
    return revoked;
  }

  /** Until a transaction waits for a lock another holds (at most 2 s: without the lock, none does). */
  async function untilSomeoneWaitsForALock() {
    const db = await getDb();
    for (let i = 0; i < 40; i++) {
      const result = await db.execute(
        sql`select count(*)::int as n from pg_locks where not granted`,
      );
      if ((result as unknown as { rows: { n: number }[] }).rows[0]?.n) return;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  async function liveTokensOf(orgId: string) {
    const db = await getDb();
    const rows = await db.select().from(mailboxes).where(eq(mailboxes.orgId, orgId));
    const live: string[] = [];
    for (const row of rows.filter((r) => r.status === "connected" && r.refreshTokenEnc)) {
      const token = openMailboxToken(row.id, "refresh_token", row.refreshTokenEnc ?? "");
      if ((await beds.demo.introspect(token)).active) live.push(row.id);
    }
    return { connected: rows.filter((r) => r.status === "connected").map((r) => r.id), live };
  }

  it("same organisation: the revoked mailbox is not brought back as connected with dead tokens", async () => {
    const owner = await createOwner();
    const address = email();
    const first = await connectDemoMailbox(owner, { email: address });
    if (first.result.kind !== "connected") throw new Error(first.result.kind);
    const mailboxId = first.result.mailboxId;
    useGoogleLikeProvider();

    const url = await startFor(owner, "demo");
    const flow = await authorizeInBrowser(url.toString(), { email: address });
    const revoked = revokeDuringExchange(owner, mailboxId);
    const result = await callbackFor(owner, flow.callbackUrl);

    expect(revoked).toEqual([expect.objectContaining({ providerResult: "revoked" })]);
    expect(await liveTokensOf(owner.orgId)).toEqual({ connected: [], live: [] });
    expect(result).toMatchObject({ kind: "refused", reason: "revoked_meanwhile" });
    expect(await readMailbox(mailboxId)).toMatchObject({
      status: "revoked",
      refreshTokenEnc: null,
    });
    const events = await auditEventsOf(owner.orgId, { action: "oauth.callback" });
    expect(events.at(-1)?.metadata).toMatchObject({
      result: "refused",
      reason: "revoked_meanwhile",
    });
  });

  it("another organisation: its new mailbox is not stored as connected with dead tokens", async () => {
    const ownerA = await createOwner();
    const ownerB = await createOwner();
    const address = email();
    const first = await connectDemoMailbox(ownerA, { email: address });
    if (first.result.kind !== "connected") throw new Error(first.result.kind);
    useGoogleLikeProvider();

    const url = await startFor(ownerB, "demo");
    const flow = await authorizeInBrowser(url.toString(), { email: address });
    const revoked = revokeDuringExchange(ownerA, first.result.mailboxId);
    const result = await callbackFor(ownerB, flow.callbackUrl);

    expect(revoked).toEqual([expect.objectContaining({ providerResult: "revoked" })]);
    expect(await liveTokensOf(ownerB.orgId)).toEqual({ connected: [], live: [] });
    expect(result).toMatchObject({ kind: "refused", reason: "revoked_meanwhile" });
  });

  // PGlite runs one transaction at a time, so a store waiting on a revoke's lock needs PostgreSQL.
  it.skipIf(!process.env.DATABASE_URL)(
    "another organisation, the revocation still in flight when the store begins: it waits, then refuses",
    async () => {
      const ownerA = await createOwner();
      const ownerB = await createOwner();
      const address = email();
      const first = await connectDemoMailbox(ownerA, { email: address });
      if (first.result.kind !== "connected") throw new Error(first.result.kind);
      useGoogleLikeProvider();
      const url = await startFor(ownerB, "demo");
      const flow = await authorizeInBrowser(url.toString(), { email: address });

      // The revoke holds its locks, its request not yet at the provider: the connect runs now.
      const connecting = connectWhenRevoking(ownerB, flow.callbackUrl);
      try {
        expect(await revoke(ownerA, first.result.mailboxId)).toMatchObject({
          providerResult: "revoked",
        });
      } finally {
        beds.demo.proxy.beforeRevocation = null;
      }
      // The revocation reached the provider after the fresh grant was issued: Google ends it too.
      const fresh = beds.demo.proxy.issued.at(-1);
      await revokeToken(beds.demo.provider, fresh?.refreshToken ?? "", "refresh_token");

      expect(await connecting()).toMatchObject({ kind: "refused", reason: "revoked_meanwhile" });
      expect(await liveTokensOf(ownerB.orgId)).toEqual({ connected: [], live: [] });
    },
  );

  // A connect refused here withdraws its grant, which at Google ends the account's other grants
  // too: one another organisation is completing at that moment must not be stored as connected
  // with it. PGlite runs one transaction at a time, so the connect cannot wait there.
  it.skipIf(!process.env.DATABASE_URL)(
    "a refused connect's withdrawal while another organisation's connect of the account completes: that one is refused, not stored with a dead grant",
    async () => {
      const ownerA = await createOwner();
      const ownerB = await createOwner();
      const address = email();
      useGoogleLikeProvider();
      const urlB = await startFor(ownerB, "demo");
      const flowB = await authorizeInBrowser(urlB.toString(), { email: address });
      const urlA = await startFor(ownerA, "demo");
      const flowA = await authorizeInBrowser(urlA.toString(), {
        email: address,
        untick: ["mail.send"],
      });

      // The withdrawal found no mailbox using the account; its request is not at the provider
      // yet: the other organisation's connect runs now.
      const connecting = connectWhenRevoking(ownerB, flowB.callbackUrl);
      try {
        expect(await callbackFor(ownerA, flowA.callbackUrl)).toMatchObject({
          kind: "missing_scope",
          grantWithdrawn: "revoked",
        });
      } finally {
        beds.demo.proxy.beforeRevocation = null;
      }
      // The withdrawal reached the provider after the other grant was issued: Google ends it too.
      const fresh = beds.demo.proxy.issued.at(-1);
      await revokeToken(beds.demo.provider, fresh?.refreshToken ?? "", "refresh_token");

      expect(await connecting()).toMatchObject({ kind: "refused", reason: "revoked_meanwhile" });
      expect(await liveTokensOf(ownerB.orgId)).toEqual({ connected: [], live: [] });
      const events = await auditEventsOf(ownerA.orgId, { action: "oauth.callback" });
      expect(events.at(-1)?.metadata).toMatchObject({
        result: "missing_scope",
        grantWithdrawn: "revoked",
      });
    },
  );

  /**
   * At the next revocation request, before it reaches the provider: `person`'s callback redeems
   * its code and runs until it waits for a lock. Its result, once the revocation has gone on.
   */
  function connectWhenRevoking(person: Person, callbackUrl: URL) {
    let connecting: Promise<CallbackResult> | null = null;
    beds.demo.proxy.beforeRevocation = async () => {
      beds.demo.proxy.beforeRevocation = null;
      const exchanged = new Promise<void>((resolve) => {
        beds.demo.proxy.afterCodeExchange = async () => resolve();
      });
      connecting = callbackFor(person, callbackUrl);
      await exchanged;
      await untilSomeoneWaitsForALock();
    };
    return () => connecting;
  }

  /** The revoke runs between the code's redemption and the store, without reaching the provider. */
  function revokeLocallyDuringExchange(person: Person, mailboxId: string) {
    const revoked: Array<{ providerResult: string }> = [];
    beds.demo.proxy.afterCodeExchange = async () => {
      beds.demo.proxy.afterCodeExchange = null;
      revoked.push(await revoke(person, mailboxId));
    };
    return revoked;
  }

  // Google was not asked (the account is still connected elsewhere), so the fresh grant lives.
  it("a revoke that ends kept_in_use meanwhile does not refuse the connect", async () => {
    const ownerA = await createOwner();
    const ownerB = await createOwner();
    const address = email();
    const inA = await connectDemoMailbox(ownerA, { email: address });
    const inB = await connectDemoMailbox(ownerB, { email: address });
    if (inA.result.kind !== "connected") throw new Error(inA.result.kind);
    if (inB.result.kind !== "connected") throw new Error(inB.result.kind);
    useGoogleLikeProvider();

    const url = await startFor(ownerA, "demo");
    const flow = await authorizeInBrowser(url.toString(), { email: address });
    const revoked = revokeLocallyDuringExchange(ownerB, inB.result.mailboxId);
    const result = await callbackFor(ownerA, flow.callbackUrl);

    expect(revoked).toEqual([expect.objectContaining({ providerResult: "kept_in_use" })]);
    expect(result).toMatchObject({ kind: "connected", mailboxId: inA.result.mailboxId });
    expect(await liveTokensOf(ownerA.orgId)).toEqual({
      connected: [inA.result.mailboxId],
      live: [inA.result.mailboxId],
    });
  });

  it("a revoke of a mailbox that held no token meanwhile does not refuse its reconnect", async () => {
    const owner = await createOwner();
    const address = email();
    const first = await connectDemoMailbox(owner, { email: address });
    if (first.result.kind !== "connected") throw new Error(first.result.kind);
    const mailboxId = first.result.mailboxId;
    await setMailbox(mailboxId, {
      status: "needs_reconnect",
      refreshTokenEnc: null,
      accessTokenEnc: null,
      accessTokenExpiresAt: null,
    });
    useGoogleLikeProvider();

    const url = await startFor(owner, "demo", mailboxId);
    const flow = await authorizeInBrowser(url.toString(), { email: address });
    const revoked = revokeLocallyDuringExchange(owner, mailboxId);
    const result = await callbackFor(owner, flow.callbackUrl);

    expect(revoked).toEqual([expect.objectContaining({ providerResult: "failed" })]);
    expect(result).toMatchObject({ kind: "connected", mailboxId });
    expect(await liveTokensOf(owner.orgId)).toEqual({ connected: [mailboxId], live: [mailboxId] });
  });

  it("a connect begun after the revoke finished is stored as usual", async () => {
    const owner = await createOwner();
    const address = email();
    const first = await connectDemoMailbox(owner, { email: address });
    if (first.result.kind !== "connected") throw new Error(first.result.kind);
    useGoogleLikeProvider();
    await revoke(owner, first.result.mailboxId);

    const again = await connectDemoMailbox(owner, { email: address });
    expect(again.result).toMatchObject({ kind: "connected", mailboxId: first.result.mailboxId });
    expect(await liveTokensOf(owner.orgId)).toEqual({
      connected: [first.result.mailboxId],
      live: [first.result.mailboxId],
    });
  });

  /** A transaction on a connection of its own, held open after `work` until released. */
  function heldTransaction(work: (tx: Tx) => Promise<void>) {
    let release = () => {};
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    let pid = 0;
    const started = new Promise<void>((resolve, reject) => {
      const run = getDb().then((db) =>
        db.transaction(async (tx) => {
          const result = await tx.execute(sql`select pg_backend_pid() as pid`);
          pid = (result as unknown as { rows: { pid: number }[] }).rows[0]?.pid ?? 0;
          await work(tx);
          resolve();
          await released;
        }),
      );
      run.catch(reject);
    });
    return { started, release, pid: () => pid };
  }

  /** One account key of lockAccountGrants: an account without subject is locked by its address. */
  function lockKey(tx: Tx, key: string) {
    return lockAccountGrants({
      db: tx,
      mailbox: { provider: "demo", providerSubject: null, address: key },
    });
  }

  /** Until `blocked` (an SQL condition on the waiting backend `w`) holds for some waiting lock. */
  async function untilWaiting(blocked: ReturnType<typeof sql>, what: string) {
    const db = await getDb();
    for (let i = 0; i < 200; i++) {
      const result = await db.execute(
        sql`select count(*)::int as n from pg_locks w where not w.granted and ${blocked}`,
      );
      if ((result as unknown as { rows: { n: number }[] }).rows[0]?.n) return;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    throw new Error(`nobody came to wait: ${what}`);
  }

  // The callback's store locks the account's rows, then the account; so does a revoke (row, then
  // account). A store whose insert met a row committed a moment ago must not lock that row while
  // it still holds the account lock, or it waits for a revoke of that row that waits for it:
  // PostgreSQL then aborts one of them (40P01), a failed connect or a failed disconnect. The
  // steps are held apart by locks the test takes: the subject's key, then the address's key.
  // PGlite runs one transaction at a time and cannot deadlock, so this needs PostgreSQL.
  it.skipIf(!process.env.DATABASE_URL)(
    "a store meeting a row inserted meanwhile and a revoke of that row both finish (PostgreSQL only: PGlite cannot deadlock)",
    async () => {
      const owner = await createOwner();
      const account = email();
      const address = email();
      beds.demo.directory.set(account, { email: address });
      useGoogleLikeProvider();
      const url = await startFor(owner, "demo");
      const flow = await authorizeInBrowser(url.toString(), { email: account });

      // The address's key, held until the store has met the other row.
      const addressKey = heldTransaction((tx) => lockKey(tx, address));
      await addressKey.started;
      // Another connect of the same account in the same organisation, as its store does: the
      // account's lock, then its row, not committed yet.
      const rowId = randomUUID();
      const other = heldTransaction(async (tx) => {
        await lockKey(tx, account);
        await tx.insert(mailboxes).values({
          id: rowId,
          orgId: owner.orgId,
          connectedBy: owner.user.id,
          provider: "demo",
          address,
          providerSubject: account,
          status: "connected",
          ...sealGrant(rowId, {
            accessToken: `at-${rowId}`,
            refreshToken: `rt-${rowId}`,
            expiresAt: new Date(Date.now() + 3600_000),
            scopes: ["openid", "email", "mail.send"],
          }),
        });
      });
      await other.started;

      // The store finds no row (the other is not committed) and waits for the subject's key.
      const connecting = callbackFor(owner, flow.callbackUrl);
      await untilWaiting(sql`${other.pid()} = any(pg_blocking_pids(w.pid))`, "store on subject");
      // The other row is committed; the store takes the subject's key and waits for the address's.
      other.release();
      await untilWaiting(
        sql`${addressKey.pid()} = any(pg_blocking_pids(w.pid))`,
        "store on address",
      );
      // A revoke of that row locks it, then waits for the account lock the store holds.
      const revoking = revoke(owner, rowId);
      await untilWaiting(
        sql`exists (select 1 from pg_locks s where not s.granted and ${addressKey.pid()} = any(pg_blocking_pids(s.pid)) and s.pid = any(pg_blocking_pids(w.pid)))`,
        "revoke on the store",
      );
      // The store goes on: its insert meets the committed row.
      addressKey.release();

      // A failure shows as its SQLSTATE (40P01: deadlock detected).
      const settled = (await Promise.allSettled([connecting, revoking])).map((r) => {
        if (r.status === "fulfilled") return r.value;
        const error = r.reason as { code?: string; cause?: { code?: string } };
        return { failed: error.cause?.code ?? error.code ?? String(r.reason) };
      });
      // The revoke reached the provider after this code was redeemed: Google ended the grant.
      expect(settled).toEqual([
        expect.objectContaining({ kind: "refused", reason: "revoked_meanwhile", mailboxId: rowId }),
        expect.objectContaining({ providerResult: "revoked" }),
      ]);
      expect(await liveTokensOf(owner.orgId)).toEqual({ connected: [], live: [] });
    },
  );
});
