import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import path from "node:path";
import { createInterface } from "node:readline";
import { describe, expect, it } from "vitest";
import { createOwner } from "@/lib/testing/factories";
import { openMailboxToken } from "./sealed";
import { connectDemoMailbox, expireAccessToken, readMailbox } from "./testing/fixtures";
import { useProviderTestbeds } from "./testing/testbeds";
import { getAccessToken } from "./tokens";

// PGlite is one process per data folder, so the cross-process race needs PostgreSQL.
describe.skipIf(!process.env.DATABASE_URL)("getAccessToken across two processes", () => {
  const beds = useProviderTestbeds();

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
