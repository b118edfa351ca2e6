import { readFile, rm, stat } from "node:fs/promises";
import path from "node:path";
import * as oidc from "openid-client";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { type DemoProvider, startDemoProvider } from "./provider";
import {
  type Client,
  CookieJar,
  clientConfig,
  exchangeCode,
  freePort,
  runAuthorization,
  tempDataDir,
} from "./testing";

const signin: Client = {
  client_id: "test-signin",
  client_secret: "signin-secret-0123456789abcdef0123456789",
  redirect_uris: ["http://localhost:3000/api/auth/callback/demo"],
};
const mailbox: Client = {
  client_id: "test-mailbox",
  client_secret: "mailbox-secret-0123456789abcdef0123456789",
  redirect_uris: ["http://localhost:3000/api/oauth/demo/callback"],
};
const MAILBOX_SCOPE = "openid email mail.send offline_access";

let dataDir: string;
let port: number;
let issuer: string;
let provider: DemoProvider;
let mailboxConfig: oidc.Configuration;
let signinConfig: oidc.Configuration;

async function start(): Promise<DemoProvider> {
  return startDemoProvider({ issuer, port, dataDir, clients: [signin, mailbox] });
}

beforeAll(async () => {
  dataDir = await tempDataDir();
  port = await freePort();
  issuer = `http://localhost:${port}`;
  provider = await start();
  mailboxConfig = await clientConfig(issuer, mailbox);
  signinConfig = await clientConfig(issuer, signin);
});

afterAll(async () => {
  await provider?.close();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

async function connectMailbox(extra: { untick?: string[]; email?: string } = {}) {
  const flow = await runAuthorization({
    issuer,
    config: mailboxConfig,
    client: mailbox,
    scope: MAILBOX_SCOPE,
    ...extra,
  });
  const tokens = await exchangeCode(flow, mailboxConfig);
  return { flow, tokens };
}

function introspect(token: string) {
  return oidc.tokenIntrospection(mailboxConfig, token);
}

describe("demo provider: authorization code + PKCE", () => {
  it("signs in through our pages and issues an ID token with the email", async () => {
    const { flow, tokens } = await connectMailbox({ email: "Alice@Example.com" });

    expect(flow.pages.map((p) => p.kind)).toEqual(["login", "consent"]);
    const [login, consent] = flow.pages;
    expect(login?.html).toContain("Demo provider — for local testing only");
    expect(login?.html).toMatch(/<label for="email">Email<\/label>/);
    expect(login?.html).toContain(">Sign in</button>");
    expect(consent?.html).toContain('value="mail.send" checked>');
    expect(consent?.html).toContain('value="offline_access" checked>');
    expect(consent?.html).toContain('value="openid" checked disabled>');
    expect(consent?.html).toContain("Send email as you");

    expect(flow.callback.searchParams.get("iss")).toBe(issuer);
    const claims = tokens.claims();
    expect(claims?.email).toBe("alice@example.com");
    expect(claims?.email_verified).toBe(true);
    expect(claims?.sub).toBe("alice@example.com");
    expect(tokens.scope?.split(" ")).toEqual(
      expect.arrayContaining(["mail.send", "offline_access"]),
    );
    expect(tokens.refresh_token).toBeTruthy();

    const info = await introspect(tokens.access_token);
    expect(info.active).toBe(true);
    expect(info.scope?.split(" ")).toContain("mail.send");
    expect(info.sub).toBe("alice@example.com");
    expect(info.client_id).toBe(mailbox.client_id);
  });

  it("grants only the ticked scopes", async () => {
    const { tokens } = await connectMailbox({ email: "bob@example.com", untick: ["mail.send"] });

    expect(tokens.scope?.split(" ")).not.toContain("mail.send");
    const info = await introspect(tokens.access_token);
    expect(info.active).toBe(true);
    expect(info.scope?.split(" ") ?? []).not.toContain("mail.send");
  });

  it("issues no refresh token when offline_access is unticked", async () => {
    const { tokens } = await connectMailbox({
      email: "carol@example.com",
      untick: ["offline_access"],
    });
    expect(tokens.refresh_token).toBeUndefined();
    expect(tokens.scope?.split(" ")).toContain("mail.send");
  });

  it("skips the login page with a session, and asks again for a scope unticked before", async () => {
    const jar = new CookieJar();
    const scope = "openid email mail.send";
    const base = { issuer, config: mailboxConfig, client: mailbox, scope, jar };
    const first = await runAuthorization({
      ...base,
      email: "dave@example.com",
      untick: ["mail.send"],
    });
    expect(first.pages.map((p) => p.kind)).toEqual(["login", "consent"]);

    const second = await runAuthorization(base);
    expect(second.pages.map((p) => p.kind)).toEqual(["consent"]);
    const tokens = await exchangeCode(second, mailboxConfig);
    expect(tokens.claims()?.email).toBe("dave@example.com");
    expect(tokens.scope?.split(" ")).toContain("mail.send");

    // Everything granted now: no page at all.
    const third = await runAuthorization(base);
    expect(third.pages).toEqual([]);
    expect(third.callback.searchParams.get("code")).toBeTruthy();
  });

  it("shows consent and issues a new refresh token on every offline_access request", async () => {
    const jar = new CookieJar();
    const base = { issuer, config: mailboxConfig, client: mailbox, scope: MAILBOX_SCOPE, jar };
    const first = await runAuthorization({ ...base, email: "frank@example.com" });
    const firstTokens = await exchangeCode(first, mailboxConfig);

    const again = await runAuthorization(base);
    expect(again.pages.map((p) => p.kind)).toEqual(["consent"]);
    const againTokens = await exchangeCode(again, mailboxConfig);
    expect(againTokens.refresh_token).toBeTruthy();
    expect(againTokens.refresh_token).not.toBe(firstTokens.refresh_token);
  });

  it("drops offline_access when the request names a prompt other than consent", async () => {
    const flow = await runAuthorization({
      issuer,
      config: mailboxConfig,
      client: mailbox,
      scope: MAILBOX_SCOPE,
      prompt: "login",
    });
    expect(flow.pages[1]?.html).not.toContain('value="offline_access"');
    const tokens = await exchangeCode(flow, mailboxConfig);
    expect(tokens.refresh_token).toBeUndefined();
  });

  it("sign-in client gets email and name without mail scopes", async () => {
    const flow = await runAuthorization({
      issuer,
      config: signinConfig,
      client: signin,
      scope: "openid email profile",
      email: "erin@example.com",
    });
    const tokens = await exchangeCode(flow, signinConfig);
    expect(tokens.claims()).toMatchObject({ email: "erin@example.com", name: "erin" });
    expect(tokens.refresh_token).toBeUndefined();
  });

  it("Cancel on the consent page ends with access_denied", async () => {
    const flow = await runAuthorization({
      issuer,
      config: mailboxConfig,
      client: mailbox,
      scope: MAILBOX_SCOPE,
      cancelAt: "consent",
    });
    expect(flow.callback.searchParams.get("error")).toBe("access_denied");
  });

  it("refuses an authorization request without PKCE", async () => {
    const url = new URL(`${issuer}/auth`);
    url.search = new URLSearchParams({
      client_id: mailbox.client_id,
      response_type: "code",
      redirect_uri: mailbox.redirect_uris[0] ?? "",
      scope: MAILBOX_SCOPE,
      state: "s1",
    }).toString();
    const response = await fetch(url, { redirect: "manual" });
    const location = new URL(response.headers.get("location") ?? "");
    expect(location.origin + location.pathname).toBe(mailbox.redirect_uris[0]);
    expect(location.searchParams.get("error")).toBe("invalid_request");
    expect(location.searchParams.get("error_description")).toMatch(/PKCE/);
  });

  it("refuses a code exchange with the wrong verifier", async () => {
    const flow = await runAuthorization({
      issuer,
      config: mailboxConfig,
      client: mailbox,
      scope: MAILBOX_SCOPE,
    });
    await expect(
      exchangeCode({ ...flow, verifier: oidc.randomPKCECodeVerifier() }, mailboxConfig),
    ).rejects.toMatchObject({ error: "invalid_grant" });
  });

  it("escapes values it puts in HTML", async () => {
    const flow = runAuthorization({
      issuer,
      config: mailboxConfig,
      client: mailbox,
      scope: MAILBOX_SCOPE,
      extraParams: { login_hint: '"><script>alert(1)</script>' },
      cancelAt: "login",
    });
    const { pages } = await flow;
    expect(pages[0]?.html).not.toContain("<script>");
    expect(pages[0]?.html).toContain("&quot;&gt;&lt;script&gt;");
  });
});

describe("demo provider: refresh, rotation and revocation", () => {
  it("rotates refresh tokens; reusing the old one is invalid_grant and ends the grant", async () => {
    const { tokens } = await connectMailbox();
    const first = tokens.refresh_token ?? "";

    const refreshed = await oidc.refreshTokenGrant(mailboxConfig, first);
    expect(refreshed.refresh_token).toBeTruthy();
    expect(refreshed.refresh_token).not.toBe(first);
    expect(refreshed.scope?.split(" ")).toContain("mail.send");
    expect((await introspect(refreshed.access_token)).active).toBe(true);

    await expect(oidc.refreshTokenGrant(mailboxConfig, first)).rejects.toMatchObject({
      error: "invalid_grant",
    });
    // Reuse is treated as theft: the whole grant, including the new tokens, is gone.
    expect((await introspect(refreshed.access_token)).active).toBe(false);
    await expect(
      oidc.refreshTokenGrant(mailboxConfig, refreshed.refresh_token ?? ""),
    ).rejects.toMatchObject({ error: "invalid_grant" });
  });

  it("revoking the refresh token makes the access token inactive", async () => {
    const { tokens } = await connectMailbox();
    expect((await introspect(tokens.access_token)).active).toBe(true);

    await oidc.tokenRevocation(mailboxConfig, tokens.refresh_token ?? "", {
      token_type_hint: "refresh_token",
    });
    expect((await introspect(tokens.access_token)).active).toBe(false);
    expect((await introspect(tokens.refresh_token ?? "")).active).toBe(false);
  });

  it("revoking the access token also ends the refresh token (Google-like)", async () => {
    const { tokens } = await connectMailbox();
    await oidc.tokenRevocation(mailboxConfig, tokens.access_token, {
      token_type_hint: "access_token",
    });
    expect((await introspect(tokens.access_token)).active).toBe(false);
    await expect(
      oidc.refreshTokenGrant(mailboxConfig, tokens.refresh_token ?? ""),
    ).rejects.toMatchObject({ error: "invalid_grant" });
  });

  it("answers revocation of an unknown token with success (RFC 7009)", async () => {
    await expect(oidc.tokenRevocation(mailboxConfig, "no-such-token")).resolves.toBeUndefined();
  });

  it("does not let one client introspect another client's token", async () => {
    const { tokens } = await connectMailbox();
    const info = await oidc.tokenIntrospection(signinConfig, tokens.access_token);
    expect(info.active).toBe(false);
  });
});

describe("demo provider: persistence and guards", () => {
  it("keeps keys and cookie secrets in 0600 files across restarts", async () => {
    const jwksFile = path.join(dataDir, "demo", "jwks.json");
    const cookieFile = path.join(dataDir, "demo", "cookie-keys.json");
    expect((await stat(jwksFile)).mode & 0o777).toBe(0o600);
    expect((await stat(cookieFile)).mode & 0o777).toBe(0o600);
    const before = await readFile(jwksFile, "utf8");
    const kidBefore = await currentKid();

    await provider.close();
    provider = await start();

    expect(await readFile(jwksFile, "utf8")).toBe(before);
    expect(await currentKid()).toBe(kidBefore);
  });

  it("refuses to start with NODE_ENV=production unless allowed", async () => {
    vi.stubEnv("NODE_ENV", "production");
    try {
      await expect(
        startDemoProvider({ issuer, port: 0, dataDir, clients: [signin] }),
      ).rejects.toThrow(/NODE_ENV=production/);
    } finally {
      vi.unstubAllEnvs();
    }
  });

  it("refuses a non-loopback host", async () => {
    await expect(
      startDemoProvider({ issuer, port: 0, host: "0.0.0.0", dataDir, clients: [signin] }),
    ).rejects.toThrow(/loopback/);
  });
});

async function currentKid(): Promise<string | undefined> {
  const response = await fetch(`${issuer}/jwks`);
  const body = (await response.json()) as { keys: Array<{ kid?: string }> };
  return body.keys[0]?.kid;
}
