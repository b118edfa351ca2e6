import "server-only";
import { startQueue } from "./index";

// instrumentation.ts starts the queue in every app process: the database is opened (and on a
// first start migrated) here if no request has opened it yet, because queued work must resume
// after a restart without waiting for someone to visit. A failure (the database not answering
// yet) is reported once and tried again.

const RETRY_MS = 5_000;

export function startQueueInBackground(): void {
  let reported = false;
  const attempt = () => {
    startQueue().catch((error: unknown) => {
      if (!reported) {
        reported = true;
        console.error(`[mailwarden] queue did not start: ${(error as Error).message}`);
      }
      setTimeout(attempt, RETRY_MS).unref();
    });
  };
  attempt();
}
