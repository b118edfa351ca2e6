// Test-only: the real demo provider on a free port, a counting proxy in front of its token
// and revocation endpoints, and a browser-like walk through its login and consent pages.
import { randomBytes } from "node:crypto";
import { rm } from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import MemoryAdapter from "oidc-provider/lib/adapters/memory_adapter.js";
import { introspectVia } from "@/lib/demo";
import { type DemoProvider, startDemoProvider } from "@/lib/demo/provider";
import { CookieJar, followAuthorization, freePort, tempDataDir } from "@/lib/demo/testing";
import { buildDemoProvider, type MailProvider, redirectUriFor } from "../providers";

export type CountingProxy = {
  url: string;
  /** Refresh-token grants that reached the provider. */
  refreshCalls: number;
  revocationCalls: number;
  /** How many revocation requests named each token (a count above 1 is a repeated revocation). */
  revokedTokens: Map<string, number>;
  /** Answer 503 to everything instead of forwarding. */
  down: boolean;
  /** Hold each refresh this long before forwarding (widens race windows). */
  refreshDelayMs: number;
  /**
   * Sent as each refresh's `scope` (RFC 6749 §6 lets a refresh ask for less): the provider then
   * answers with only these, as Google does once a person took a permission back.
   */
  refreshScope: string | null;
  /** Authorization codes redeemed at the token endpoint. */
  codeExchanges: number;
  /** Tokens the provider issued for redeemed codes, newest last: what a test can introspect. */
  issued: Array<{ accessToken: string; refreshToken: string | null }>;
  /** Runs after the provider answered a code exchange, before the answer goes back. */
  afterCodeExchange: (() => Promise<void>) | null;
  /** Runs when a revocation request arrives, before it is forwarded. */
  beforeRevocation: (() => Promise<void>) | null;
  close(): Promise<void>;
};

export type DemoTestbed = {
  issuer: string;
  clientId: string;
  clientSecret: string;
  provider: MailProvider;
  proxy: CountingProxy;
  dataDir: string;
  /** Claims a directory administrator changed, by account id (the login address). */
  directory: Map<string, Record<string, unknown>>;
  introspect(token: string): Promise<{ active: boolean; scope?: string }>;
  close(): Promise<void>;
};

async function readBody(req: http.IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

export async function startCountingProxy(target: string): Promise<CountingProxy> {
  const server = http.createServer((req, res) => {
    forward(req, res).catch(() => {
      res.writeHead(502);
      res.end();
    });
  });
  const proxy: CountingProxy = {
    url: "",
    refreshCalls: 0,
    revocationCalls: 0,
    revokedTokens: new Map(),
    down: false,
    refreshDelayMs: 0,
    refreshScope: null,
    codeExchanges: 0,
    issued: [],
    afterCodeExchange: null,
    beforeRevocation: null,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
  async function forward(req: http.IncomingMessage, res: http.ServerResponse) {
    let body = await readBody(req);
    const path = req.url ?? "/";
    const grantType =
      path === "/token" ? new URLSearchParams(body.toString()).get("grant_type") : null;
    const isRefresh = grantType === "refresh_token";
    if (isRefresh && proxy.refreshScope !== null) {
      const form = new URLSearchParams(body.toString());
      form.set("scope", proxy.refreshScope);
      body = Buffer.from(form.toString());
    }
    const isCode = grantType === "authorization_code";
    if (isRefresh) proxy.refreshCalls++;
    if (isCode) proxy.codeExchanges++;
    if (path === "/token/revocation") {
      proxy.revocationCalls++;
      const token = new URLSearchParams(body.toString()).get("token") ?? "";
      proxy.revokedTokens.set(token, (proxy.revokedTokens.get(token) ?? 0) + 1);
      await proxy.beforeRevocation?.();
    }
    if (proxy.down) {
      res.writeHead(503, { "content-type": "text/plain" });
      res.end("Service Unavailable");
      return;
    }
    if (isRefresh && proxy.refreshDelayMs > 0) {
      await new Promise((resolve) => setTimeout(resolve, proxy.refreshDelayMs));
    }
    const headers: Record<string, string> = {};
    for (const name of ["authorization", "content-type", "accept"]) {
      const value = req.headers[name];
      if (typeof value === "string") headers[name] = value;
    }
    const upstream = await fetch(`${target}${path}`, {
      method: req.method,
      headers,
      body: new Uint8Array(body),
    });
    const text = await upstream.text();
    if (isCode && upstream.status === 200) {
      const tokens = JSON.parse(text) as { access_token: string; refresh_token?: string };
      proxy.issued.push({
        accessToken: tokens.access_token,
        refreshToken: tokens.refresh_token ?? null,
      });
      await proxy.afterCodeExchange?.();
    }
    res.writeHead(upstream.status, {
      "content-type": upstream.headers.get("content-type") ?? "application/json",
    });
    res.end(text);
  }
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  proxy.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return proxy;
}

/**
 * oidc-provider's own in-memory store forgets the oldest of its entries beyond about a thousand
 * (several per grant): a test with hundreds of grants would find old tokens "inactive" without
 * anyone revoking them. This store forgets only what has expired.
 */
function unboundedMemoryAdapter() {
  const entries = new Map<string, { value: unknown; expiresAt: number }>();
  const store = {
    get(key: string) {
      const entry = entries.get(key);
      if (!entry) return undefined;
      if (entry.expiresAt <= Date.now()) {
        entries.delete(key);
        return undefined;
      }
      return entry.value;
    },
    set(key: string, value: unknown, options?: { maxAge?: number }) {
      const expiresAt = options?.maxAge ? Date.now() + options.maxAge : Number.POSITIVE_INFINITY;
      entries.set(key, { value, expiresAt });
    },
    delete(key: string) {
      entries.delete(key);
    },
  };
  return (model: string) => new MemoryAdapter(model, store);
}

export async function startDemoTestbed(): Promise<DemoTestbed> {
  const dataDir = await tempDataDir();
  const port = await freePort();
  const issuer = `http://localhost:${port}`;
  const clientId = "mailwarden-mailbox-test";
  const clientSecret = randomBytes(32).toString("base64url");
  const directory = new Map<string, Record<string, unknown>>();
  const demo: DemoProvider = await startDemoProvider({
    issuer,
    port,
    dataDir,
    accountClaims: (accountId) => directory.get(accountId),
    adapter: unboundedMemoryAdapter(),
    clients: [
      { client_id: clientId, client_secret: clientSecret, redirect_uris: [redirectUriFor("demo")] },
    ],
  });
  const proxy = await startCountingProxy(issuer);
  const provider = buildDemoProvider({
    issuer,
    clientId,
    clientSecret,
    smtpPort: 2465,
    tokenEndpoint: `${proxy.url}/token`,
    revocationEndpoint: `${proxy.url}/token/revocation`,
  });
  return {
    issuer,
    clientId,
    clientSecret,
    provider,
    proxy,
    dataDir,
    directory,
    introspect: introspectVia(issuer, { clientId, clientSecret }),
    close: async () => {
      await Promise.allSettled([proxy.close(), demo.close()]);
      // Its inbox, certificates and keys: a bench run leaves 20,000 files (81 MB) otherwise.
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

export type BrowserOptions = {
  email?: string;
  /** Scopes to untick on the consent page. */
  untick?: string[];
  /** Press Cancel on the consent page. */
  cancel?: boolean;
  jar?: CookieJar;
};

/** Follows the authorization URL through login and consent the way a browser would. */
export async function authorizeInBrowser(
  authorizationUrl: string,
  opts: BrowserOptions = {},
): Promise<{ callbackUrl: URL; pages: Array<"login" | "consent">; jar: CookieJar }> {
  const jar = opts.jar ?? new CookieJar();
  const { callback, pages } = await followAuthorization(jar, new URL(authorizationUrl), {
    email: opts.email ?? "mailbox@example.test",
    untick: opts.untick,
    cancelAt: opts.cancel ? "consent" : undefined,
  });
  return { callbackUrl: callback, pages: pages.map((p) => p.kind), jar };
}
