import { EnvError, env } from "@/lib/env";

export function checkEnvironmentAtStartup() {
  try {
    const e = env();
    const database = e.DATABASE_URL ? "postgresql" : "embedded";
    console.info(`[mailwarden] mode=${e.isDemo ? "demo" : "production"} database=${database}`);
  } catch (error) {
    if (!(error instanceof EnvError)) throw error;
    console.error(`[mailwarden] ${error.message}`);
    process.exit(1);
  }
}
