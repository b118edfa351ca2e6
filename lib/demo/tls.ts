import { X509Certificate } from "node:crypto";
import path from "node:path";
import { demoDir, readIfExists, writePrivateFile } from "./files";

export type DemoCertificate = { key: string; cert: string; ca: string };

const VALID_DAYS = 825;
// Regenerate a little before expiry so a long-running demo never serves an expired cert.
const RENEW_BEFORE_MS = 7 * 24 * 60 * 60 * 1000;

export function demoTlsDir(dataDir: string): string {
  return path.join(demoDir(dataDir), "tls");
}

export function demoCaPath(dataDir: string): string {
  return path.join(demoTlsDir(dataDir), "ca.pem");
}

/** The CA certificate a client passes as `ca` to trust the demo SMTP server. */
export async function readDemoCa(dataDir: string): Promise<string> {
  const ca = await readIfExists(demoCaPath(dataDir));
  if (!ca) throw new Error(`No demo CA at ${demoCaPath(dataDir)}: start the demo services first`);
  return ca;
}

/**
 * A tiny CA plus a leaf for localhost/127.0.0.1, created on first start. A separate CA keeps
 * the trust anchor (what clients pin) apart from the serving key and mirrors real-world chains.
 */
export async function ensureDemoCertificate(dataDir: string): Promise<DemoCertificate> {
  const dir = demoTlsDir(dataDir);
  const files = {
    ca: path.join(dir, "ca.pem"),
    key: path.join(dir, "key.pem"),
    cert: path.join(dir, "cert.pem"),
  };
  const [ca, key, cert] = await Promise.all([
    readIfExists(files.ca),
    readIfExists(files.key),
    readIfExists(files.cert),
  ]);
  if (ca && key && cert && stillValid(cert) && stillValid(ca)) return { ca, key, cert };

  const fresh = await generateChain();
  // The CA key is not needed after signing; keeping it would only widen what can leak.
  await writePrivateFile(files.key, fresh.key);
  await writePrivateFile(files.cert, fresh.cert);
  await writePrivateFile(files.ca, fresh.ca);
  return fresh;
}

function stillValid(pem: string): boolean {
  try {
    const validTo = new Date(new X509Certificate(pem).validTo).getTime();
    return validTo - Date.now() > RENEW_BEFORE_MS;
  } catch {
    return false;
  }
}

async function generateChain(): Promise<DemoCertificate> {
  // Loaded here, not at the top: the app imports this module (for readDemoCa) on its first
  // page, and selfsigned's X.509 libraries are large; only the demo services generate a chain.
  const { generate } = await import("selfsigned");
  const notBeforeDate = new Date(Date.now() - 60_000);
  const notAfterDate = new Date(notBeforeDate.getTime() + VALID_DAYS * 24 * 60 * 60 * 1000);
  const base = { keyType: "ec" as const, algorithm: "sha256", notBeforeDate, notAfterDate };

  const ca = await generate([{ name: "commonName", value: "Mailwarden demo CA (local testing)" }], {
    ...base,
    extensions: [
      { name: "basicConstraints", cA: true, pathLenConstraint: 0, critical: true },
      {
        name: "keyUsage",
        keyCertSign: true,
        cRLSign: true,
        digitalSignature: true,
        critical: true,
      },
    ],
  });
  const leaf = await generate([{ name: "commonName", value: "localhost" }], {
    ...base,
    ca: { key: ca.private, cert: ca.cert },
    extensions: [
      { name: "basicConstraints", cA: false, critical: true },
      { name: "keyUsage", digitalSignature: true, keyEncipherment: true, critical: true },
      { name: "extKeyUsage", serverAuth: true },
      {
        name: "subjectAltName",
        altNames: [
          { type: 2, value: "localhost" },
          { type: 7, ip: "127.0.0.1" },
          { type: 7, ip: "::1" },
        ],
      },
    ],
  });
  return { key: leaf.private, cert: leaf.cert, ca: ca.cert };
}
