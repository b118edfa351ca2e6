import { rm, stat } from "node:fs/promises";
import nodemailer from "nodemailer";
import * as oidc from "openid-client";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import {
  type DemoServices,
  demoCaPath,
  demoClientsPath,
  readDemoCa,
  readDemoClients,
  readDemoInbox,
  startDemoServices,
} from "./index";
import {
  type Client,
  clientConfig,
  exchangeCode,
  freePort,
  runAuthorization,
  tempDataDir,
} from "./testing";

const APP_URL = "http://localhost:3000";
let dataDir: string;
let services: DemoServices;
let mailbox: Client;
let config: oidc.Configuration;
let ca: string;

beforeAll(async () => {
  dataDir = await tempDataDir();
  const [oidcPort, smtpPort] = [await freePort(), await freePort()];
  services = await startDemoServices({ dataDir, appUrl: APP_URL, oidcPort, smtpPort });
  const clients = readDemoClients(dataDir);
  mailbox = {
    client_id: clients.mailbox.clientId,
    client_secret: clients.mailbox.clientSecret,
    redirect_uris: [`${APP_URL}/api/oauth/demo/callback`],
  };
  config = await clientConfig(services.issuer, mailbox);
  ca = await readDemoCa(dataDir);
});

afterAll(async () => {
  await services?.close();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

async function connect(email: string, untick: string[] = []) {
  const flow = await runAuthorization({
    issuer: services.issuer,
    config,
    client: mailbox,
    scope: "openid email mail.send offline_access",
    prompt: "consent",
    email,
    untick,
  });
  return exchangeCode(flow, config);
}

function sendAs(user: string, accessToken: string, subject: string) {
  return nodemailer
    .createTransport({
      host: "localhost",
      port: services.smtpPort,
      secure: true,
      tls: { ca, rejectUnauthorized: true, minVersion: "TLSv1.2" },
      auth: { type: "OAuth2", user, accessToken },
    })
    .sendMail({ from: user, to: "friend@example.net", subject, text: "Sent through the demo" });
}

describe("startDemoServices", () => {
  it("creates both clients once, in a 0600 file, with the expected ids", async () => {
    const clients = readDemoClients(dataDir);
    expect(clients.signin.clientId).toBe("mailwarden-signin");
    expect(clients.mailbox.clientId).toBe("mailwarden-mailbox");
    expect(clients.signin.clientSecret).not.toBe(clients.mailbox.clientSecret);
    expect((await stat(demoClientsPath(dataDir))).mode & 0o777).toBe(0o600);
    expect(services.issuer).toMatch(/^http:\/\/localhost:\d+$/);
    expect(demoCaPath(dataDir)).toMatch(/demo\/tls\/ca\.pem$/);
  });

  it("registers the sign-in client with the Auth.js callback", async () => {
    const clients = readDemoClients(dataDir);
    const signin: Client = {
      client_id: clients.signin.clientId,
      client_secret: clients.signin.clientSecret,
      redirect_uris: [`${APP_URL}/api/auth/callback/demo`],
    };
    const signinConfig = await clientConfig(services.issuer, signin);
    const flow = await runAuthorization({
      issuer: services.issuer,
      config: signinConfig,
      client: signin,
      scope: "openid email profile",
      email: "grace@example.com",
    });
    const tokens = await exchangeCode(flow, signinConfig);
    expect(tokens.claims()?.email).toBe("grace@example.com");
  });

  it("connects a mailbox, sends through SMTP with the real token, and shows it in the inbox", async () => {
    const tokens = await connect("heidi@example.com");
    await sendAs("heidi@example.com", tokens.access_token, "End to end");
    const [message] = await readDemoInbox(dataDir, { limit: 1 });
    expect(message).toMatchObject({ subject: "End to end", authUser: "heidi@example.com" });
  });

  it("refuses to send once the grant is revoked at the provider", async () => {
    const tokens = await connect("ivan@example.com");
    await oidc.tokenRevocation(config, tokens.refresh_token ?? "");
    const error = await sendAs("ivan@example.com", tokens.access_token, "after revoke").catch(
      (e: unknown) => e,
    );
    expect(error).toMatchObject({ code: "EAUTH", responseCode: 535 });
  });

  it("refuses a token whose mail.send was unticked, and another user's token", async () => {
    const noMail = await connect("judy@example.com", ["mail.send"]);
    await expect(sendAs("judy@example.com", noMail.access_token, "x")).rejects.toMatchObject({
      code: "EAUTH",
      responseCode: 535,
    });
    const heidi = await connect("heidi@example.com");
    await expect(sendAs("judy@example.com", heidi.access_token, "x")).rejects.toMatchObject({
      code: "EAUTH",
      responseCode: 535,
    });
  });

  it("refuses to start in production unless allowed", async () => {
    vi.stubEnv("NODE_ENV", "production");
    try {
      await expect(
        startDemoServices({ dataDir, appUrl: APP_URL, oidcPort: 0, smtpPort: 0 }),
      ).rejects.toThrow(/NODE_ENV=production/);
    } finally {
      vi.unstubAllEnvs();
    }
  });
});
