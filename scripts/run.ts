// `npm run dev` / `npm start`: in demo mode, starts the local OAuth2 provider and SMTP server
// beside the app (they hold no database), then Next.js.
//
// A first start is mostly waiting: Next compiling the first page, PGlite creating and migrating
// its folder, the demo services loading. So Next is spawned first and the rest runs beside it,
// in this process, on the other core: a new embedded database is created and migrated (then
// handed over to the server, see HANDOFF_ENV in db/lock.ts), the demo services start, and in
// dev the first pages are requested as soon as Next listens, so that they are compiled before
// a person's browser asks for them.
import { spawn } from "node:child_process";
import fs from "node:fs";
import { connect } from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { HANDOFF_ENV, lockDataFolder, pgliteFolder } from "@/db/lock";
import { type DemoServices, ensureDemoClients, startDemoServices } from "@/lib/demo";
import { EnvError, parseEnv } from "@/lib/env";
import { nodeSupport, runningNode } from "@/lib/node-version";

const command = process.argv[2] === "start" ? "start" : "dev";

// What a person opens first: `/` (which sends a signed-out visitor to the sign-in page), the
// sign-in page, then the Auth.js route that the demo sign-in comes back to.
const FIRST_PAGES = ["/", "/sign-in"];
const AFTER_FIRST_PAGES = ["/api/auth/session"];
const LISTEN_TIMEOUT_MS = 120_000;

async function main() {
  // Before anything starts: the server spawned below runs on this same Node (process.execPath);
  // its instrumentation would refuse it too, but only once Next has loaded.
  const support = nodeSupport(runningNode());
  if (!support.ok) {
    console.error(`[mailwarden] ${support.message}`);
    process.exit(1);
  }
  // Validate as the Next.js child will see it: `next start` runs with NODE_ENV=production.
  const e = parseEnv({
    ...process.env,
    NODE_ENV: command === "start" ? "production" : "development",
  });
  const port = new URL(e.APP_URL).port || "3000";
  const demoOptions = {
    dataDir: e.dataDir,
    appUrl: e.APP_URL,
    oidcPort: e.DEMO_OIDC_PORT,
    smtpPort: e.DEMO_SMTP_PORT,
    allowInProduction: e.DEMO_MODE === true,
  };
  // The sign-in page reads the demo client credentials synchronously: they exist before Next.
  if (e.isDemo) await ensureDemoClients(e.dataDir);
  // Creating the embedded database takes seconds, so a first start creates it here, beside
  // Next; an existing one opens in a fraction of a second and is left to the server. The folder
  // is taken before Next starts, so that the server waits for it (see HANDOFF_ENV) rather than
  // racing this process for it.
  const create =
    !e.DATABASE_URL && !fs.existsSync(path.join(pgliteFolder(e.dataDir), "PG_VERSION"));
  const release = create ? takeFolder(e.dataDir) : undefined;

  // Our own server in front of Next.js stamps each request with its socket address (see
  // scripts/server.mjs); the `next` CLI has no way to do that.
  const server = fileURLToPath(new URL("./server.mjs", import.meta.url));
  // Demo mode is a local playground: keep the dashboard on loopback like the demo services.
  const host = e.isDemo ? ["localhost"] : [];
  const child = spawn(process.execPath, [server, command, port, ...host], {
    stdio: "inherit",
    env: {
      ...process.env,
      NODE_ENV: command === "start" ? "production" : "development",
      [HANDOFF_ENV]: String(process.pid),
    },
  });
  let demo: DemoServices | undefined;
  const stop = (signal: NodeJS.Signals) => child.kill(signal);
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
  child.on("exit", async (code) => {
    await demo?.close();
    process.exit(code ?? 0);
  });

  const database = release && prepareDatabase(e.dataDir, release);
  const warming = command === "dev" ? warmUp(`http://localhost:${port}`, FIRST_PAGES) : undefined;
  // The first page needs the database; the demo services only once someone signs in.
  await database;
  if (e.isDemo) {
    try {
      demo = await startDemoServices(demoOptions);
    } catch (error) {
      // Without its provider the demo cannot sign anyone in: stop rather than half-run.
      child.kill("SIGTERM");
      throw error;
    }
    console.info(
      `[mailwarden] demo provider ${demo.issuer} · demo SMTP localhost:${demo.smtpPort} (TLS, XOAUTH2 only)`,
    );
  }
  if (!warming) return;
  if (await warming) console.info(`[mailwarden] ready: ${e.APP_URL.replace(/\/+$/, "")}/`);
  await warmUp(`http://localhost:${port}`, AFTER_FIRST_PAGES);
}

/** A failure is only reported: the server meets it again on its first request and shows it. */
function takeFolder(dataDir: string): (() => void) | undefined {
  try {
    return lockDataFolder(pgliteFolder(dataDir));
  } catch (error) {
    console.error(`[mailwarden] ${(error as Error).message}`);
    return undefined;
  }
}

async function prepareDatabase(dataDir: string, release: () => void): Promise<void> {
  try {
    // Loaded after Next is spawned: the ORM and the schema take a moment to load.
    const { prepareEmbeddedDatabase } = await import("@/db");
    await prepareEmbeddedDatabase(dataDir, release);
  } catch (error) {
    release();
    console.error(`[mailwarden] ${(error as Error).message}`);
  }
}

/**
 * Requests `pathnames` once Next listens, so that Next compiles them now; true when all were
 * answered. A failure here only means a slower first page.
 */
async function warmUp(origin: string, pathnames: string[]): Promise<boolean> {
  const started = Date.now();
  const port = Number(new URL(origin).port);
  while (!(await listening(port))) {
    if (Date.now() - started > LISTEN_TIMEOUT_MS) return false;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const answered = await Promise.all(
    pathnames.map((pathname) =>
      fetch(`${origin}${pathname}`, { redirect: "manual", signal: AbortSignal.timeout(120_000) })
        .then(async (response) => {
          await response.arrayBuffer();
          return response.status < 500;
        })
        .catch(() => false),
    ),
  );
  return answered.every(Boolean);
}

/** A bare connection: any HTTP request would make Next compile something (a 404 page at least). */
function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ port, host: "localhost" });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

main().catch((error) => {
  console.error(error instanceof EnvError ? error.message : error);
  process.exit(1);
});
