import path from "node:path";
import { defineConfig } from "vitest/config";

// One worker, modules shared across files: PGlite takes seconds to create, so the whole
// suite shares one database and each test makes its own organisation.
export default defineConfig({
  resolve: { alias: { "@": path.resolve(import.meta.dirname) } },
  test: {
    include: ["{lib,db,app,components,scripts}/**/*.test.ts"],
    environment: "node",
    pool: "forks",
    fileParallelism: false,
    isolate: false,
    testTimeout: 30_000,
    hookTimeout: 60_000,
    setupFiles: ["./vitest.setup.ts"],
    // next-auth imports "next/server" without an extension, which only a bundler resolves.
    server: { deps: { inline: ["next-auth"] } },
    globalSetup: ["./vitest.global.ts"],
  },
});
