import "server-only";
import fs from "node:fs";
import path from "node:path";

// The embedded database allows one process per data folder; a lock file beside the folder
// holds the owner's pid. Kept apart from db/index.ts (and its ORM) so that scripts/run.ts can
// take the folder before it even loads the database code.

export class DatabaseLockedError extends Error {
  constructor(folder: string, pid: number) {
    super(
      `The embedded database in ${folder} is in use by another process (pid ${pid}). ` +
        "PGlite allows one process per data folder: stop that process, or set DATABASE_URL " +
        "to use PostgreSQL.",
    );
    this.name = "DatabaseLockedError";
  }
}

/** Where PGlite keeps the embedded database of a data folder. */
export function pgliteFolder(dataDir: string): string {
  return path.join(dataDir, "pglite");
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Takes an exclusive lock file beside the PGlite folder; a stale lock (dead pid) is taken over. */
export function lockDataFolder(folder: string): () => void {
  const lockPath = `${folder}.lock`;
  fs.mkdirSync(path.dirname(lockPath), { recursive: true });
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = fs.openSync(lockPath, "wx", 0o600);
      fs.writeSync(fd, String(process.pid));
      fs.closeSync(fd);
      const release = () => {
        try {
          if (fs.readFileSync(lockPath, "utf8") === String(process.pid)) fs.unlinkSync(lockPath);
        } catch {
          // already gone
        }
      };
      process.once("exit", release);
      return release;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      const pid = Number(fs.readFileSync(lockPath, "utf8"));
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && isAlive(pid)) {
        throw new DatabaseLockedError(folder, pid);
      }
      fs.unlinkSync(lockPath);
    }
  }
  throw new Error(`Could not lock ${folder}`);
}

// `npm run dev` / `npm start` (scripts/run.ts) create and migrate the embedded database in their
// own process while Next.js compiles, then close it. They take the folder before they start the
// server and name themselves in this variable, so the server waits for that hand-over instead
// of refusing the folder; any other holder is still refused at once.
export const HANDOFF_ENV = "MAILWARDEN_DB_HANDOFF_PID";
const HANDOFF_TIMEOUT_MS = 120_000;

function lockHolder(folder: string): number | undefined {
  try {
    return Number(fs.readFileSync(`${folder}.lock`, "utf8"));
  } catch {
    return undefined;
  }
}

/** Returns once the launcher named in HANDOFF_ENV no longer holds `folder` (if it does). */
export async function awaitHandoff(folder: string): Promise<void> {
  const launcher = Number(process.env[HANDOFF_ENV]);
  if (!Number.isInteger(launcher) || launcher <= 0 || launcher === process.pid) return;
  const deadline = Date.now() + HANDOFF_TIMEOUT_MS;
  while (lockHolder(folder) === launcher && isAlive(launcher) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
