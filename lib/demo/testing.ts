// Test-only helpers: drive the demo provider's real HTTP pages like a browser would.
import { mkdtemp } from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import * as oidc from "openid-client";

export async function tempDataDir(): Promise<string> {
  return mkdtemp(path.join(os.tmpdir(), "mailwarden-demo-"));
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

type StoredCookie = { name: string; value: string; path: string };

/** Just enough of a browser cookie jar: names, paths and deletion. */
export class CookieJar {
  private cookies: StoredCookie[] = [];

  store(response: Response): void {
    for (const line of response.headers.getSetCookie()) this.storeOne(line);
  }

  header(url: URL): string {
    return this.cookies
      .filter((c) => url.pathname === c.path || url.pathname.startsWith(withSlash(c.path)))
      .map((c) => `${c.name}=${c.value}`)
      .join("; ");
  }

  private storeOne(line: string): void {
    const [pair = "", ...attributes] = line.split(";").map((part) => part.trim());
    const eq = pair.indexOf("=");
    const name = pair.slice(0, eq);
    const value = pair.slice(eq + 1);
    let cookiePath = "/";
    let expired = false;
    for (const attribute of attributes) {
      const [key = "", val = ""] = attribute.split("=");
      if (key.toLowerCase() === "path") cookiePath = val;
      if (key.toLowerCase() === "expires" && Date.parse(val) <= Date.now()) expired = true;
      if (key.toLowerCase() === "max-age" && Number(val) <= 0) expired = true;
    }
    this.cookies = this.cookies.filter((c) => !(c.name === name && c.path === cookiePath));
    if (!expired) this.cookies.push({ name, value, path: cookiePath });
  }
}

function withSlash(p: string): string {
  return p.endsWith("/") ? p : `${p}/`;
}

export async function browserFetch(
  jar: CookieJar,
  url: URL,
  init: { method?: string; form?: URLSearchParams } = {},
): Promise<Response> {
  const headers: Record<string, string> = { cookie: jar.header(url) };
  if (init.form) headers["content-type"] = "application/x-www-form-urlencoded";
  const response = await fetch(url, {
    method: init.method ?? "GET",
    headers,
    body: init.form,
    redirect: "manual",
  });
  jar.store(response);
  return response;
}

export type Client = { client_id: string; client_secret: string; redirect_uris: string[] };

export async function clientConfig(issuer: string, client: Client): Promise<oidc.Configuration> {
  return oidc.discovery(
    new URL(issuer),
    client.client_id,
    undefined,
    oidc.ClientSecretBasic(client.client_secret),
    { execute: [oidc.allowInsecureRequests] },
  );
}

export type FlowOptions = {
  issuer: string;
  config: oidc.Configuration;
  client: Client;
  jar?: CookieJar;
  scope: string;
  email?: string;
  /** Scopes to untick on the consent page. */
  untick?: string[];
  prompt?: string;
  cancelAt?: "login" | "consent";
  extraParams?: Record<string, string>;
};

export type FlowResult = {
  /** Where the provider finally sent the browser (the client's redirect URI). */
  callback: URL;
  pages: Array<{ kind: "login" | "consent"; html: string }>;
  verifier: string;
  state: string;
  nonce: string;
  jar: CookieJar;
};

/** Walks authorize → our login/consent pages → redirect back, the way a browser would. */
export async function runAuthorization(opts: FlowOptions): Promise<FlowResult> {
  const jar = opts.jar ?? new CookieJar();
  const verifier = oidc.randomPKCECodeVerifier();
  const state = oidc.randomState();
  const nonce = oidc.randomNonce();
  const params: Record<string, string> = {
    redirect_uri: opts.client.redirect_uris[0] ?? "",
    scope: opts.scope,
    state,
    nonce,
    code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
    code_challenge_method: "S256",
    ...(opts.prompt ? { prompt: opts.prompt } : {}),
    ...opts.extraParams,
  };
  const url = oidc.buildAuthorizationUrl(opts.config, params);
  const { callback, pages } = await followAuthorization(jar, url, opts);
  return { callback, pages, verifier, state, nonce, jar };
}

export type PageAnswers = Pick<FlowOptions, "email" | "untick" | "cancelAt">;

/**
 * Follows an authorization URL through the provider's login and consent pages the way a browser
 * would, until the provider redirects to another origin (the client's redirect URI).
 */
export async function followAuthorization(
  jar: CookieJar,
  authorizationUrl: URL,
  answers: PageAnswers,
): Promise<{ callback: URL; pages: FlowResult["pages"] }> {
  let url = authorizationUrl;
  const pages: FlowResult["pages"] = [];
  for (let step = 0; step < 12; step++) {
    if (url.origin !== authorizationUrl.origin) return { callback: url, pages };
    const response = await browserFetch(jar, url);
    const location = response.headers.get("location");
    if (location) {
      url = new URL(location, url);
      continue;
    }
    const html = await response.text();
    if (response.status !== 200) throw new Error(`HTTP ${response.status} at ${url}: ${html}`);
    const kind = html.includes('name="email"') ? "login" : "consent";
    pages.push({ kind, html });
    url = await submitPage(jar, url, kind, html, answers);
  }
  throw new Error("Too many steps in the authorization flow");
}

async function submitPage(
  jar: CookieJar,
  pageUrl: URL,
  kind: "login" | "consent",
  html: string,
  opts: PageAnswers,
): Promise<URL> {
  const action = /<form method="post" action="([^"]+)"/.exec(html)?.[1];
  if (!action) throw new Error(`No form on the ${kind} page`);
  let target = new URL(action, pageUrl);
  const form = new URLSearchParams();
  if (opts.cancelAt === kind) {
    target = new URL(target.pathname.replace(/\/(login|confirm)$/, "/abort"), pageUrl);
  } else if (kind === "login") {
    form.set("email", opts.email ?? "alice@example.com");
  } else {
    const offered = [...html.matchAll(/name="scope" value="([^"]+)" checked(?! disabled)/g)];
    for (const match of offered) {
      const scope = match[1] ?? "";
      if (!opts.untick?.includes(scope)) form.append("scope", scope);
    }
  }
  const response = await browserFetch(jar, target, { method: "POST", form });
  const location = response.headers.get("location");
  if (!location) throw new Error(`No redirect after ${kind}: ${await response.text()}`);
  return new URL(location, target);
}

export async function exchangeCode(flow: FlowResult, config: oidc.Configuration) {
  return oidc.authorizationCodeGrant(config, flow.callback, {
    pkceCodeVerifier: flow.verifier,
    expectedState: flow.state,
    expectedNonce: flow.nonce,
  });
}
