import "server-only";
// Importing the job kinds registers their handlers, so that any process can resume any job.
import "./reencrypt";
import "./revoke-all";
import { getDb } from "@/db";

import { resumeAbandonedJobs } from "./runner";

export { cancelJob, resumeAbandonedJobs, runJob, startJobInBackground } from "./runner";

let resumer: ReturnType<typeof setInterval> | undefined;

/** Every interval, take over jobs whose process died (their lease expired). One per process. */
export function startJobResumer(intervalMs = 15_000) {
  if (resumer) return;
  resumer = setInterval(() => {
    getDb()
      .then((db) => resumeAbandonedJobs(db))
      .catch(() => {});
  }, intervalMs);
  resumer.unref?.();
}
