import { EnvError, env } from "@/lib/env";
import { nodeSupport, runningNode } from "@/lib/node-version";

/**
 * Stops the process, with the fix, on a Node.js older than package.json's `engines` (Node 20 is
 * past its end of life; oidc-provider and the queue need a current LTS). A bad setting stops it
 * too, naming the variable.
 */
export function checkEnvironmentAtStartup() {
  const support = nodeSupport(runningNode());
  if (!support.ok) {
    console.error(`[mailwarden] ${support.message}`);
    process.exit(1);
  }
  try {
    const e = env();
    const database = e.DATABASE_URL ? "postgresql" : "embedded";
    console.info(
      `[mailwarden] mode=${e.isDemo ? "demo" : "production"} database=${database} node=${process.version}`,
    );
  } catch (error) {
    if (!(error instanceof EnvError)) throw error;
    console.error(`[mailwarden] ${error.message}`);
    process.exit(1);
  }
}
