// Runs once when the server starts: a bad setting stops start-up here, naming the variable.
export async function register() {
  if (process.env.NEXT_RUNTIME !== "nodejs") return;
  const { checkEnvironmentAtStartup } = await import("@/lib/startup");
  checkEnvironmentAtStartup();
}
