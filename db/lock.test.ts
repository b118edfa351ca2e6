import { execFile } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { eq } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { getDb, HANDOFF_ENV, lockDataFolder } from "@/db";
import { organizations } from "@/db/schema";
import { env } from "@/lib/env";

const run = promisify(execFile);

describe.skipIf(Boolean(env().DATABASE_URL))("embedded database folder lock", () => {
  it("refuses a second process with a clear message and the first keeps all its data", async () => {
    const db = await getDb();
    const names = Array.from({ length: 50 }, (_, i) => `lock-test-${process.pid}-${i}`);
    for (const name of names.slice(0, 25)) await db.insert(organizations).values({ name });

    const second = await run("npx", ["tsx", "--conditions=react-server", "scripts/db-check.ts"], {
      env: { ...process.env, MAILWARDEN_DATA_DIR: env().dataDir },
    }).then(
      () => ({ code: 0, stderr: "" }),
      (error: { code: number; stderr: string }) => error,
    );
    expect(second.code).toBe(1);
    expect(second.stderr).toMatch(/is in use by another process \(pid \d+\)/);
    expect(second.stderr).toMatch(/set DATABASE_URL/);

    for (const name of names.slice(25)) await db.insert(organizations).values({ name });
    const rows = await Promise.all(
      names.map((name) => db.select().from(organizations).where(eq(organizations.name, name))),
    );
    expect(rows.filter((r) => r.length === 1)).toHaveLength(50);
  });

  // `npm run dev` creates the database in its own process, then hands the folder to the server.
  it("a server waits for the launcher named in the hand-over variable, and only for it", async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "mailwarden-handoff-"));
    const release = lockDataFolder(path.join(dataDir, "pglite"));
    const check = (extra: Record<string, string>) =>
      run("npx", ["tsx", "--conditions=react-server", "scripts/db-check.ts"], {
        env: { ...process.env, MAILWARDEN_DATA_DIR: dataDir, DATABASE_URL: "", ...extra },
      }).then(
        (ok) => ({ code: 0, stdout: ok.stdout, stderr: "" }),
        (error: { code: number; stdout: string; stderr: string }) => error,
      );
    try {
      // Held by a process that is not the named launcher: refused at once, as before.
      const started = Date.now();
      const stranger = await check({ [HANDOFF_ENV]: String(process.pid + 1) });
      const toReachTheLock = Date.now() - started;
      expect(stranger.code).toBe(1);
      expect(stranger.stderr).toMatch(/is in use by another process/);

      // Held by the named launcher: the server waits, and opens the folder once it is released.
      const waiting = check({ [HANDOFF_ENV]: String(process.pid) });
      // Twice as long as the first child took to meet the lock, so this one surely met it too.
      await new Promise((resolve) => setTimeout(resolve, Math.max(3_000, 2 * toReachTheLock)));
      release();
      const handedOver = await waiting;
      expect(handedOver.code).toBe(0);
      expect(handedOver.stdout).toMatch(/database ok \(pglite\)/);
    } finally {
      release();
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  }, 90_000);
});
