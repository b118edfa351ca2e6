import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { eq } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { getDb } from "@/db";
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
});
