// Runs once when the server starts: a bad setting stops start-up here, naming the variable.
// Then the audit sealer's interval, so this instance also seals what others left pending, and
// the job resumer, so it finishes long jobs whose process died.
export async function register() {
  if (process.env.NEXT_RUNTIME !== "nodejs") return;
  const { checkEnvironmentAtStartup } = await import("@/lib/startup");
  checkEnvironmentAtStartup();
  const { startAuditSealer } = await import("@/lib/audit/sealer");
  startAuditSealer();
  const { startJobResumer } = await import("@/lib/jobs");
  startJobResumer();
}
