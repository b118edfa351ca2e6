import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import path from "node:path";
import { z } from "zod";
import { assertDemoAllowed, demoDir, readIfExists, writePrivateFile } from "./files";
import type { Introspection } from "./smtp";
import { ensureDemoCertificate } from "./tls";

export { DEMO_MAIL_SCOPE } from "./files";
// Light on purpose: app code imports this module for readDemoClients/readDemoInbox, so the
// provider and SMTP server (oidc-provider, smtp-server) load only when the services start.
// Import them directly from "./provider" and "./smtp" when you need them.
export type { DemoMessage } from "./inbox";
export { demoInboxDir, readDemoInbox } from "./inbox";
export type { DemoClient, DemoProvider, DemoProviderOptions } from "./provider";
export type { AuthOverride, DemoSmtp, DemoSmtpOptions, Introspection } from "./smtp";
export type { DemoCertificate } from "./tls";
export { demoCaPath, ensureDemoCertificate, readDemoCa } from "./tls";

export const SIGNIN_CLIENT_ID = "mailwarden-signin";
export const MAILBOX_CLIENT_ID = "mailwarden-mailbox";

export type DemoClientCredentials = { clientId: string; clientSecret: string };
export type DemoClients = { signin: DemoClientCredentials; mailbox: DemoClientCredentials };

export type DemoServicesOptions = {
  dataDir: string;
  appUrl: string;
  oidcPort: number;
  smtpPort: number;
  allowInProduction?: boolean;
};

export type DemoServices = { issuer: string; smtpPort: number; close(): Promise<void> };

const credentialsSchema = z.object({
  clientId: z.string().min(1),
  clientSecret: z.string().min(32),
});
const clientsSchema = z.object({ signin: credentialsSchema, mailbox: credentialsSchema });

export function demoClientsPath(dataDir: string): string {
  return path.join(demoDir(dataDir), "clients.json");
}

/**
 * Synchronous because app configuration (Auth.js providers) is built synchronously. Throws
 * when the demo services have not created the file yet.
 */
export function readDemoClients(dataDir: string): DemoClients {
  return clientsSchema.parse(JSON.parse(readFileSync(demoClientsPath(dataDir), "utf8")));
}

export async function ensureDemoClients(dataDir: string): Promise<DemoClients> {
  const existing = await readIfExists(demoClientsPath(dataDir));
  if (existing) return clientsSchema.parse(JSON.parse(existing));
  const clients: DemoClients = {
    signin: { clientId: SIGNIN_CLIENT_ID, clientSecret: randomBytes(32).toString("base64url") },
    mailbox: { clientId: MAILBOX_CLIENT_ID, clientSecret: randomBytes(32).toString("base64url") },
  };
  await writePrivateFile(demoClientsPath(dataDir), JSON.stringify(clients, null, 2));
  return clients;
}

/** The demo provider and the demo SMTP server (implicit TLS), wired to each other. */
export async function startDemoServices(opts: DemoServicesOptions): Promise<DemoServices> {
  assertDemoAllowed(opts.allowInProduction);
  const clients = await ensureDemoClients(opts.dataDir);
  const tls = await ensureDemoCertificate(opts.dataDir);
  const appUrl = opts.appUrl.replace(/\/+$/, "");
  const issuer = `http://localhost:${opts.oidcPort}`;
  const [{ startDemoProvider }, { startDemoSmtp, behaviourOfTaggedAddress }] = await Promise.all([
    import("./provider"),
    import("./smtp"),
  ]);

  const provider = await startDemoProvider({
    issuer,
    port: opts.oidcPort,
    dataDir: opts.dataDir,
    allowInProduction: opts.allowInProduction,
    clients: [
      clientEntry(clients.signin, `${appUrl}/api/auth/callback/demo`),
      clientEntry(clients.mailbox, `${appUrl}/api/oauth/demo/callback`),
    ],
  });
  try {
    const smtp = await startDemoSmtp({
      port: opts.smtpPort,
      dataDir: opts.dataDir,
      tls,
      mode: "implicit",
      introspect: introspectVia(issuer, clients.mailbox),
      behaviour: behaviourOfTaggedAddress,
    });
    return {
      issuer,
      smtpPort: smtp.port,
      close: async () => {
        await Promise.allSettled([smtp.close(), provider.close()]);
      },
    };
  } catch (error) {
    await provider.close();
    throw error;
  }
}

function clientEntry(credentials: DemoClientCredentials, redirectUri: string) {
  return {
    client_id: credentials.clientId,
    client_secret: credentials.clientSecret,
    redirect_uris: [redirectUri],
  };
}

const introspectionSchema = z.object({
  active: z.boolean(),
  scope: z.string().optional(),
  sub: z.string().optional(),
});

/** RFC 7662 introspection at the demo provider, authenticated as the mailbox client. */
export function introspectVia(
  issuer: string,
  client: DemoClientCredentials,
): (token: string) => Promise<Introspection> {
  // RFC 6749 §2.3.1: id and secret are form-encoded before they are joined and base64'd.
  const basic = Buffer.from(
    `${encodeURIComponent(client.clientId)}:${encodeURIComponent(client.clientSecret)}`,
  ).toString("base64");
  return async (token) => {
    const response = await fetch(`${issuer}/token/introspection`, {
      method: "POST",
      headers: {
        authorization: `Basic ${basic}`,
        "content-type": "application/x-www-form-urlencoded",
        accept: "application/json",
      },
      body: new URLSearchParams({ token, token_type_hint: "access_token" }),
      signal: AbortSignal.timeout(5_000),
    });
    if (!response.ok) throw new Error(`Introspection failed with HTTP ${response.status}`);
    const body = introspectionSchema.parse(await response.json());
    return {
      active: body.active,
      ...(body.scope === undefined ? {} : { scope: body.scope }),
      ...(body.sub === undefined ? {} : { sub: body.sub }),
    };
  };
}
