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
    globalSetup: ["./vitest.global.ts"],
    // next-auth imports "next/server" without an extension, which Node's resolver refuses;
    // inlined, it goes through Vite's resolver (and a test may substitute next/headers for it).
    server: { deps: { inline: ["next-auth"] } },
  },
});
