// `npm run dev` / `npm start`: in demo mode, starts the local OAuth2 provider and SMTP server
// beside the app (they hold no database, so they never touch the PGlite folder), then Next.js.
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { startDemoServices } from "@/lib/demo";
import { EnvError, parseEnv } from "@/lib/env";

const command = process.argv[2] === "start" ? "start" : "dev";

async function main() {
  // Validate as the Next.js child will see it: `next start` runs with NODE_ENV=production.
  const e = parseEnv({
    ...process.env,
    NODE_ENV: command === "start" ? "production" : "development",
  });
  const port = new URL(e.APP_URL).port || "3000";
  const demo = e.isDemo
    ? await startDemoServices({
        dataDir: e.dataDir,
        appUrl: e.APP_URL,
        oidcPort: e.DEMO_OIDC_PORT,
        smtpPort: e.DEMO_SMTP_PORT,
        allowInProduction: e.DEMO_MODE === true,
      })
    : undefined;
  if (demo) {
    console.info(
      `[mailwarden] demo provider ${demo.issuer} · demo SMTP localhost:${demo.smtpPort} (TLS, XOAUTH2 only)`,
    );
  }
  // Our own server in front of Next.js stamps each request with its socket address (see
  // scripts/server.mjs); the `next` CLI has no way to do that.
  const server = fileURLToPath(new URL("./server.mjs", import.meta.url));
  // Demo mode is a local playground: keep the dashboard on loopback like the demo services.
  const host = e.isDemo ? ["localhost"] : [];
  const child = spawn(process.execPath, [server, command, port, ...host], {
    stdio: "inherit",
    env: { ...process.env, NODE_ENV: command === "start" ? "production" : "development" },
  });
  const stop = (signal: NodeJS.Signals) => child.kill(signal);
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
  child.on("exit", async (code) => {
    await demo?.close();
    process.exit(code ?? 0);
  });
}

main().catch((error) => {
  console.error(error instanceof EnvError ? error.message : error);
  process.exit(1);
});
