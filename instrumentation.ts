// Runs once when the server starts: a bad setting stops start-up here, naming the variable.
// Then the background work every instance shares: the audit sealer's interval (this instance
// also seals what others left pending), the daily audit retention purge, and the job resumer
// (it finishes long jobs whose process died), this instance's heartbeat, the mailbox health
// check, the notification digest flusher, the job queue with its workers (lib/queue) and the
// webhook deliveries' worker and sweep (lib/webhooks/dispatch.ts).
export async function register() {
  if (process.env.NEXT_RUNTIME !== "nodejs") return;
  const { checkEnvironmentAtStartup } = await import("@/lib/startup");
  checkEnvironmentAtStartup();
  const { startAuditSealer } = await import("@/lib/audit/sealer");
  startAuditSealer();
  const { startAuditRetentionJob } = await import("@/lib/audit/retention");
  startAuditRetentionJob();
  const { startJobResumer } = await import("@/lib/jobs");
  startJobResumer();
  const { startInstanceHeartbeat } = await import("@/lib/deployment/heartbeat");
  startInstanceHeartbeat();
  const { startMailboxHealthCheck } = await import("@/lib/mail/health");
  startMailboxHealthCheck();
  const { startNotificationFlusher } = await import("@/lib/notifications");
  startNotificationFlusher();
  const { startMessageWorkers } = await import("@/lib/mail/queued");
  await startMessageWorkers();
  const { startWebhooks } = await import("@/lib/webhooks/dispatch");
  await startWebhooks();
  const { startQueueInBackground } = await import("@/lib/queue/start");
  startQueueInBackground();
}
