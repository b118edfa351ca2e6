import { randomUUID } from "node:crypto";
import { and, eq, gte, inArray, sql } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { getDb } from "@/db";
import { listJobItems } from "@/db/queries/jobs";
import { auditEvents, jobs, mailboxes, messages, oauthTransactions } from "@/db/schema";
import { decryptField, encryptField, keyIdOf } from "@/lib/crypto/envelope";
import { generateKeySpec, parseKeyring } from "@/lib/crypto/keyring";
import { keyring } from "@/lib/crypto/runtime";
import { memberContext } from "@/lib/testing/context";
import { createOwner } from "@/lib/testing/factories";
import {
  countCellsByKey,
  describeRotation,
  REENCRYPT,
  RotationFailedError,
  reencryptTokens,
  startReencryption,
} from "./reencrypt";
import { runJob } from "./runner";

describe("key rotation", () => {
  it("re-encrypts every token under the new key, resumably, and audits it", async () => {
    const oldSpec = generateKeySpec("old1");
    const oldRing = parseKeyring(oldSpec);
    // The suite shares one database: keep every other test's tokens readable by including the
    // process keyring, and rotate back to it at the end.
    const runtimeSpec = [...keyring().byId]
      .map(([id, key]) => `${id}:${key.toString("base64")}`)
      .join(",");
    const newSpec = generateKeySpec("new1");
    const newRing = parseKeyring(`${newSpec},${runtimeSpec},${oldSpec}`);
    const db = await getDb();
    const { orgId } = await createOwner();
    const ids: string[] = [randomUUID(), randomUUID(), randomUUID()];
    await db.insert(mailboxes).values(
      ids.map((id, i) => ({
        id,
        orgId,
        provider: "demo" as const,
        address: `rot${i}-${id.slice(0, 6)}@example.test`,
        status: "connected" as const,
        keyId: "old1",
        accessTokenEnc: encryptField(oldRing, `access-${i}`, {
          table: "mailboxes",
          column: "access_token",
          rowId: id,
        }),
        refreshTokenEnc: encryptField(oldRing, `refresh-${i}`, {
          table: "mailboxes",
          column: "refresh_token",
          rowId: id,
        }),
      })),
    );

    // A queued message's sealed body (lib/mail/queued.ts) is rotated with the tokens.
    const messageId = randomUUID();
    const bodyCtx = { table: "messages", column: "body_sealed", rowId: messageId };
    await db.insert(messages).values({
      id: messageId,
      orgId,
      mailboxId: ids[0],
      senderType: "api_key",
      senderId: randomUUID(),
      recipients: { to: ["r@example.test"], cc: [], bcc: [] },
      recipientCount: 1,
      subject: "queued",
      status: "queued",
      nextAttemptAt: new Date(Date.now() + 86_400_000),
      bodySealed: encryptField(oldRing, '{"text":"queued body"}', bodyCtx),
    });

    const first = await reencryptTokens(db, newRing, { actor: { type: "system" }, maxRows: 1 });
    expect(first.remaining).toBe(true);
    const second = await reencryptTokens(db, newRing, { actor: { type: "system" } });
    expect(second.remaining).toBe(false);

    const rows = await db.select().from(mailboxes).where(inArray(mailboxes.id, ids));
    for (const row of rows) {
      const i = ids.indexOf(row.id);
      expect(row.keyId).toBe("new1");
      expect(keyIdOf(row.accessTokenEnc ?? "")).toBe("new1");
      const ctx = { table: "mailboxes", column: "refresh_token", rowId: row.id };
      expect(decryptField(newRing, row.refreshTokenEnc ?? "", ctx)).toBe(`refresh-${i}`);
      expect(() => decryptField(oldRing, row.refreshTokenEnc ?? "", ctx)).toThrow(
        /not in the keyring/,
      );
    }
    const [queued] = await db.select().from(messages).where(eq(messages.id, messageId));
    expect(second.messages).toBeGreaterThanOrEqual(1);
    expect(keyIdOf(queued?.bodySealed ?? "")).toBe("new1");
    expect(decryptField(newRing, queued?.bodySealed ?? "", bodyCtx)).toBe('{"text":"queued body"}');
    await reencryptTokens(db, parseKeyring(`${runtimeSpec},${newSpec},${oldSpec}`), {
      actor: { type: "system" },
    });
    const events = await db
      .select()
      .from(auditEvents)
      .where(eq(auditEvents.action, "keys.rotated"));
    expect(events.some((e) => e.metadata.keyId === "new1" && e.metadata.remaining === false)).toBe(
      true,
    );
  });
});

describe("re-encryption as a job", () => {
  it("counts cells per key, reports a cell no key opens, and leaves current cells alone", async () => {
    const ring = keyring();
    const stranger = parseKeyring(generateKeySpec("gone1"));
    const db = await getDb();
    const { orgId, user } = await createOwner();
    const current = randomUUID();
    const lost = randomUUID();
    const cell = (id: string, column: string) => ({ table: "mailboxes", column, rowId: id });
    await db.insert(mailboxes).values([
      {
        id: current,
        orgId,
        provider: "demo",
        address: `cur-${current.slice(0, 6)}@example.test`,
        status: "connected" as const,
        accessTokenEnc: encryptField(ring, "a", cell(current, "access_token")),
        refreshTokenEnc: encryptField(ring, "r", cell(current, "refresh_token")),
      },
      {
        id: lost,
        orgId,
        provider: "demo",
        address: `lost-${lost.slice(0, 6)}@example.test`,
        status: "connected" as const,
        refreshTokenEnc: encryptField(stranger, "r", cell(lost, "refresh_token")),
      },
    ]);
    const counts = await countCellsByKey(db);
    expect(counts.find((c) => c.keyId === "gone1")?.cells).toBeGreaterThanOrEqual(1);
    expect(counts.find((c) => c.keyId === ring.current.id)?.cells).toBeGreaterThanOrEqual(2);

    const job = await startReencryption({
      db,
      ctx: memberContext(orgId, user, "owner", { ip: null, userAgent: "vitest" }),
    });
    const done = await runJob(db, job.id);
    expect(done?.status).toBe("done");
    const items = await listJobItems({ db, jobId: job.id });
    expect(items.find((i) => i.itemId === current)?.result).toBe("unchanged");
    expect(items.find((i) => i.itemId === lost)?.result).toBe("unreadable");
    const [row] = await db.select().from(mailboxes).where(eq(mailboxes.id, lost));
    expect(row?.refreshTokenEnc && keyIdOf(row.refreshTokenEnc)).toBe("gone1");
    await db.delete(mailboxes).where(inArray(mailboxes.id, [current, lost]));
  });
});

describe("re-encryption job's items", () => {
  it("cover queued message bodies and PKCE verifiers, which the per-key count includes", async () => {
    const ring = keyring();
    const stranger = parseKeyring(generateKeySpec("gone2"));
    const db = await getDb();
    const { orgId, user } = await createOwner();
    const [current, lost] = [randomUUID(), randomUUID()];
    const body = (id: string, sealer: typeof ring) =>
      encryptField(sealer, "sealed body", { table: "messages", column: "body_sealed", rowId: id });
    const queued = (id: string, sealer: typeof ring) => ({
      id,
      orgId,
      senderType: "user" as const,
      senderId: user.id,
      recipients: { to: ["r@example.test"], cc: [], bcc: [] },
      recipientCount: 1,
      subject: "Waiting",
      status: "queued" as const,
      bodySealed: body(id, sealer),
      nextAttemptAt: new Date(Date.now() + 3_600_000),
    });
    await db.insert(messages).values([queued(current, ring), queued(lost, stranger)]);
    const transaction = randomUUID();
    await db.insert(oauthTransactions).values({
      id: transaction,
      state: randomUUID(),
      codeVerifierEnc: encryptField(stranger, "verifier", {
        table: "oauth_transactions",
        column: "code_verifier",
        rowId: transaction,
      }),
      nonce: "n",
      provider: "demo",
      requestedScopes: "openid",
      redirectUri: "http://localhost/callback",
      userId: user.id,
      orgId,
      expiresAt: new Date(Date.now() + 600_000),
    });
    try {
      expect((await countCellsByKey(db)).find((c) => c.keyId === "gone2")?.cells).toBe(2);
      const job = await startReencryption({
        db,
        ctx: memberContext(orgId, user, "owner", { ip: null, userAgent: "vitest" }),
      });
      await runJob(db, job.id);
      const items = await listJobItems({ db, jobId: job.id });
      const result = (itemId: string) => items.find((i) => i.itemId === itemId)?.result;
      expect(result(`message:${current}`)).toBe("unchanged");
      expect(result(`message:${lost}`)).toBe("unreadable");
      expect(result(`oauth:${transaction}`)).toBe("unreadable");
      expect(items.find((i) => i.itemId === `oauth:${transaction}`)?.detail).toBe(
        "No key of the keyring opens this PKCE verifier.",
      );
    } finally {
      await db.delete(messages).where(inArray(messages.id, [current, lost]));
      await db.delete(oauthTransactions).where(eq(oauthTransactions.id, transaction));
    }
  });
});

describe("webhook signing secrets", () => {
  it("are re-encrypted with the tokens and still sign with the same secret", async () => {
    const { createEndpoint } = await import("@/lib/webhooks/endpoints");
    const { openWebhookSecret } = await import("@/lib/webhooks/secrets");
    const { webhookEndpoints } = await import("@/db/schema");
    const runtimeSpec = [...keyring().byId]
      .map(([id, key]) => `${id}:${key.toString("base64")}`)
      .join(",");
    const newSpec = generateKeySpec("hook2");
    const db = await getDb();
    const owner = await createOwner();
    const { endpoint, secret } = await createEndpoint(
      memberContext(owner.orgId, owner.user, "owner"),
      { url: "http://127.0.0.1:9/rotation", description: "", events: ["message.sent"] },
    );
    const before = await countCellsByKey(db);
    const result = await reencryptTokens(db, parseKeyring(`${newSpec},${runtimeSpec}`), {
      actor: { type: "system" },
    });
    expect(result.webhookEndpoints).toBeGreaterThanOrEqual(1);
    const [row] = await db
      .select()
      .from(webhookEndpoints)
      .where(eq(webhookEndpoints.id, endpoint.id));
    expect(keyIdOf(row?.secret ?? "")).toBe("hook2");
    expect(
      decryptField(parseKeyring(`${newSpec},${runtimeSpec}`), row?.secret ?? "", {
        table: "webhook_endpoints",
        column: "secret",
        rowId: endpoint.id,
      }),
    ).toBe(secret);
    expect((await countCellsByKey(db)).find((c) => c.keyId === "hook2")?.cells).toBeGreaterThan(0);
    expect(before.find((c) => c.keyId === "hook2")).toBeUndefined();
    // Back under the process key, for the rest of the suite.
    await reencryptTokens(db, parseKeyring(`${runtimeSpec},${newSpec}`), {
      actor: { type: "system" },
    });
    const [back] = await db
      .select()
      .from(webhookEndpoints)
      .where(eq(webhookEndpoints.id, endpoint.id));
    expect(openWebhookSecret(endpoint.id, "secret", back?.secret ?? "")).toBe(secret);
  });
});

describe("a rotation that fails midway", () => {
  it("is audited as a failure with what it re-encrypted, and the summary names every kind", async () => {
    const { createEndpoint } = await import("@/lib/webhooks/endpoints");
    const runtimeSpec = [...keyring().byId]
      .map(([id, key]) => `${id}:${key.toString("base64")}`)
      .join(",");
    const newSpec = generateKeySpec("fail3");
    const newRing = parseKeyring(`${newSpec},${runtimeSpec}`);
    const db = await getDb();
    const owner = await createOwner();
    const mailboxId = randomUUID();
    await db.insert(mailboxes).values({
      id: mailboxId,
      orgId: owner.orgId,
      provider: "demo",
      address: `fail-${mailboxId.slice(0, 6)}@example.test`,
      status: "connected",
      accessTokenEnc: encryptField(keyring(), "access", {
        table: "mailboxes",
        column: "access_token",
        rowId: mailboxId,
      }),
    });
    const { endpoint } = await createEndpoint(memberContext(owner.orgId, owner.user, "owner"), {
      url: "http://127.0.0.1:9/rotation-fails",
      description: "",
      events: ["message.sent"],
    });
    // The last loop (webhook secrets) meets a real database error: a trigger the test installs
    // refuses the write of this endpoint's row, after the mailboxes were already rewritten.
    const tag = endpoint.id.replaceAll("-", "").slice(0, 12);
    await db.execute(
      sql.raw(`create function rotfail_${tag}() returns trigger language plpgsql as $$
        begin
          if new.id = '${endpoint.id}' then raise exception 'injected: the database refused the write'; end if;
          return new;
        end $$`),
    );
    await db.execute(
      sql.raw(
        `create trigger rotfail_${tag} before update on webhook_endpoints for each row execute function rotfail_${tag}()`,
      ),
    );
    let failure: unknown = null;
    try {
      await reencryptTokens(db, newRing, { actor: { type: "system", label: "test" } });
    } catch (error) {
      failure = error;
    } finally {
      await db.execute(sql.raw(`drop trigger rotfail_${tag} on webhook_endpoints`));
      await db.execute(sql.raw(`drop function rotfail_${tag}()`));
    }
    // Back under the process key, for the rest of the suite.
    await reencryptTokens(db, parseKeyring(`${runtimeSpec},${newSpec}`), {
      actor: { type: "system" },
    });

    const events = (
      await db.select().from(auditEvents).where(eq(auditEvents.action, "keys.rotated"))
    ).filter((e) => e.metadata.keyId === "fail3");
    expect(events).toHaveLength(1);
    expect(failure).toBeInstanceOf(RotationFailedError);
    const result = (failure as RotationFailedError).result;
    expect(result.mailboxes).toBeGreaterThanOrEqual(1);
    expect(result.remaining).toBe(true);
    const [event] = events;
    expect(event?.outcome).toBe("failure");
    expect(event?.metadata).toMatchObject({
      mailboxes: result.mailboxes,
      transactions: result.transactions,
      messages: result.messages,
      webhookEndpoints: result.webhookEndpoints,
      remaining: true,
    });
    expect(event?.metadata.mailboxes).toBeGreaterThanOrEqual(1);
    // The database's words, not the statement with the sealed secrets it was writing.
    expect(event?.metadata.error).toMatch(/^injected: the database refused the write/);
    expect(String(event?.metadata.error)).not.toMatch(/v1\.|params|update/i);

    const summary = describeRotation(result);
    for (const [count, words] of [
      [result.mailboxes, /mailbox/],
      [result.transactions, /pending connection/],
      [result.messages, /queued message bod/],
      [result.webhookEndpoints, /webhook endpoint/],
    ] as const) {
      expect(summary).toMatch(new RegExp(`\\b${count} ${words.source}`));
    }
  });
});

describe("starting a re-encryption", { timeout: 120_000 }, () => {
  it("twice at once creates one job, and its keys.rotated event counts each kind of item apart", async () => {
    const { createEndpoint } = await import("@/lib/webhooks/endpoints");
    const db = await getDb();
    const owner = await createOwner();
    const ctx = memberContext(owner.orgId, owner.user, "owner");
    const mailboxId = randomUUID();
    const cell = (column: string) => ({ table: "mailboxes", column, rowId: mailboxId });
    await db.insert(mailboxes).values({
      id: mailboxId,
      orgId: owner.orgId,
      provider: "demo",
      address: `kinds-${mailboxId.slice(0, 6)}@example.test`,
      status: "connected" as const,
      refreshTokenEnc: encryptField(keyring(), "r", cell("refresh_token")),
    });
    const { endpoint } = await createEndpoint(ctx, {
      url: "http://127.0.0.1:9/kinds",
      description: "",
      events: ["message.sent"],
    });
    try {
      // Two operators (or one double submit) at the same moment. On PGlite transactions run one
      // at a time anyway; on PostgreSQL (DATABASE_URL) this is the race the lock closes.
      const started = await Promise.all(
        Array.from({ length: 4 }, () => startReencryption({ db, ctx })),
      );
      expect(new Set(started.map((j) => j.id)).size).toBe(1);
      const job = started[0];
      if (!job) throw new Error("no job");
      const jobIds = await db
        .select({ id: jobs.id })
        .from(jobs)
        .where(and(eq(jobs.kind, REENCRYPT), gte(jobs.createdAt, job.createdAt)));
      expect(jobIds.map((j) => j.id)).toEqual([job.id]);

      const done = await runJob(db, job.id);
      expect(done?.status).toBe("done");
      const items = await listJobItems({ db, jobId: job.id });
      expect(items.find((i) => i.itemId === mailboxId)?.result).toBe("unchanged");
      expect(items.find((i) => i.itemId === `webhook:${endpoint.id}`)?.result).toMatch(
        /^(unchanged|reencrypted)$/,
      );
      // The suite shares one database: other tests' rows are items too, so count what this
      // job's items say, kind by kind.
      const ok = (i: (typeof items)[number]) =>
        i.result === "unchanged" || i.result === "reencrypted";
      const of = (prefix: string) => items.filter((i) => ok(i) && i.itemId.startsWith(prefix));
      const [event] = await db
        .select()
        .from(auditEvents)
        .where(and(eq(auditEvents.action, "keys.rotated"), eq(auditEvents.targetId, job.id)));
      expect(event?.metadata).toMatchObject({
        mailboxes: items.filter((i) => ok(i) && !i.itemId.includes(":")).length,
        webhookEndpoints: of("webhook:").length,
        messages: of("message:").length,
        transactions: of("oauth:").length,
        unreadable: items.filter((i) => i.result === "unreadable").length,
        failed: 0,
      });
      expect(event?.metadata.webhookEndpoints).toBeGreaterThanOrEqual(1);
      expect(event?.metadata.mailboxes).toBeLessThan(job.total);
    } finally {
      await db.delete(mailboxes).where(eq(mailboxes.id, mailboxId));
    }
  });
});
