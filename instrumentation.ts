// Runs once when the server starts: a bad setting stops start-up here, naming the variable.
export async function register() {
  if (process.env.NEXT_RUNTIME !== "nodejs") return;
  const { env } = await import("@/lib/env");
  const e = env();
  console.info(
    `[mailwarden] mode=${e.isDemo ? "demo" : "production"} database=${e.DATABASE_URL ? "postgresql" : "embedded"}`,
  );
}
