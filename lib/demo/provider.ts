import { generateKeyPairSync, randomBytes, randomUUID } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import Provider, {
  type Account,
  type Configuration,
  interactionPolicy,
  type JWK,
  type KoaContextWithOIDC,
} from "oidc-provider";
import { z } from "zod";
import {
  assertDemoAllowed,
  assertLoopback,
  DEMO_MAIL_SCOPE,
  demoDir,
  readIfExists,
  writePrivateFile,
} from "./files";
import { isEmail, requestHandler } from "./interaction";
import { errorPage } from "./pages";

export type DemoClient = { client_id: string; client_secret: string; redirect_uris: string[] };

export type DemoProviderOptions = {
  issuer: string;
  port: number;
  host?: string;
  dataDir: string;
  clients: DemoClient[];
  allowInProduction?: boolean;
  /**
   * Test seam: the claims a directory administrator set for an account (another email, say),
   * merged over the defaults. The account id, and so `sub`, never changes.
   */
  accountClaims?: (accountId: string) => Record<string, unknown> | undefined;
  /** Test seam: where the provider keeps its grants and tokens (default: in memory, bounded). */
  adapter?: Configuration["adapter"];
};

export type DemoProvider = { issuer: string; close(): Promise<void> };

export async function startDemoProvider(opts: DemoProviderOptions): Promise<DemoProvider> {
  assertDemoAllowed(opts.allowInProduction);
  const host = opts.host ?? "127.0.0.1";
  assertLoopback(host);

  const secrets = await ensureProviderSecrets(opts.dataDir);
  const provider = new Provider(opts.issuer, {
    ...providerConfiguration(opts.clients, secrets, opts.accountClaims),
    ...(opts.adapter ? { adapter: opts.adapter } : {}),
  });
  const server = http.createServer(requestHandler(provider, opts.issuer));
  await listen(server, opts.port, host);

  return {
    issuer: opts.issuer,
    close: () => closeServer(server),
  };
}

/* ------------------------------------------------------------------------------------------ */
/* Configuration                                                                               */

type ProviderSecrets = { jwks: { keys: JWK[] }; cookieKeys: string[] };

function providerConfiguration(
  clients: DemoClient[],
  secrets: ProviderSecrets,
  accountClaims: DemoProviderOptions["accountClaims"],
): Configuration {
  return {
    clients: clients.map((client) => ({
      ...client,
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"],
      token_endpoint_auth_method: "client_secret_basic",
    })),
    responseTypes: ["code"],
    pkce: { required: () => true },
    scopes: ["openid", "offline_access", DEMO_MAIL_SCOPE],
    claims: { openid: ["sub"], email: ["email", "email_verified"], profile: ["name"] },
    // Lets the ID token carry email/name directly (next-auth reads the ID token, not /me).
    conformIdTokenClaims: false,
    findAccount: (ctx, sub) => findAccount(ctx, sub, accountClaims),
    jwks: secrets.jwks,
    cookies: { keys: secrets.cookieKeys },
    features: {
      devInteractions: { enabled: false },
      introspection: { enabled: true, allowedPolicy: sameClientOnly },
      revocation: { enabled: true, allowedPolicy: sameClientOnly },
      // Off on purpose: with it on, a token for a resource server would drop mail.send from
      // the opaque, introspectable token. Without it, every granted scope stays on the token.
      resourceIndicators: { enabled: false },
      rpInitiatedLogout: { enabled: false },
    },
    interactions: {
      policy: interactionPolicyWithGranularConsent(),
      url: (_ctx, i) => `/interaction/${i.uid}`,
    },
    issueRefreshToken: (_ctx, client, code) =>
      client.grantTypeAllowed("refresh_token") && code.scopes.has("offline_access"),
    rotateRefreshToken: true,
    // Google-like: revoking either token of a grant (access or refresh) ends the whole grant.
    revokeGrantPolicy: () => true,
    clientBasedCORS: () => false,
    ttl: {
      AccessToken: 60 * 60,
      AuthorizationCode: 60,
      IdToken: 60 * 60,
      RefreshToken: 14 * 24 * 60 * 60,
      Interaction: 60 * 60,
      Session: 14 * 24 * 60 * 60,
      Grant: 14 * 24 * 60 * 60,
    },
    renderError: (ctx, out) => {
      ctx.type = "html";
      ctx.body = errorPage(`${out.error}: ${out.error_description ?? ""}`);
    },
  };
}

/** The demo's only check on an introspecting or revoking client: it must be the token's own. */
function sameClientOnly(
  _ctx: KoaContextWithOIDC,
  client: { clientId: string },
  token: { clientId?: string | undefined },
): boolean {
  return token.clientId === client.clientId;
}

/** Any email address is an account; its id is the lowercased address. */
async function findAccount(
  _ctx: KoaContextWithOIDC,
  sub: string,
  accountClaims: DemoProviderOptions["accountClaims"],
): Promise<Account | undefined> {
  if (!isEmail(sub)) return undefined;
  const name = sub.split("@")[0] ?? sub;
  return {
    accountId: sub,
    claims: () => ({ email: sub, email_verified: true, name, ...accountClaims?.(sub), sub }),
  };
}

/**
 * The stock consent check compares the request with scopes the grant has either granted or
 * rejected, so a scope the person once unticked would never be asked for again. Real
 * providers ask again; so does this one, unless consent was just given in this interaction.
 */
function interactionPolicyWithGranularConsent() {
  const policy = interactionPolicy.base();
  const consent = policy.get("consent");
  if (!consent) throw new Error("oidc-provider has no consent prompt");
  const missing = Symbol("missingOIDCScope");
  type Ctx = KoaContextWithOIDC & { [missing]?: string[] };
  const index = consent.checks.findIndex((check) => check.reason === "op_scopes_missing");
  consent.checks.remove("op_scopes_missing");
  consent.checks.add(
    new interactionPolicy.Check(
      "op_scopes_missing",
      "requested scopes not granted",
      (ctx: Ctx) => {
        if (ctx.oidc.result?.consent) return interactionPolicy.Check.NO_NEED_TO_PROMPT;
        const granted = new Set(ctx.oidc.grant?.getOIDCScope().split(" "));
        const absent = [...ctx.oidc.requestParamOIDCScopes].filter((s) => !granted.has(s));
        if (absent.length === 0) return interactionPolicy.Check.NO_NEED_TO_PROMPT;
        ctx[missing] = absent;
        return interactionPolicy.Check.REQUEST_PROMPT;
      },
      (ctx: Ctx) => ({ missingOIDCScope: ctx[missing] }),
    ),
    index === -1 ? undefined : index,
  );
  return policy;
}

/* ------------------------------------------------------------------------------------------ */
/* Keys and cookie secrets, persisted so restarts keep sessions and ID token signatures valid  */

const secretsSchema = z.object({
  jwks: z.object({ keys: z.array(z.record(z.string(), z.unknown())).min(1) }),
  cookieKeys: z.array(z.string().min(32)).min(1),
});

async function ensureProviderSecrets(dataDir: string): Promise<ProviderSecrets> {
  const jwksFile = path.join(demoDir(dataDir), "jwks.json");
  const cookieFile = path.join(demoDir(dataDir), "cookie-keys.json");
  const [jwksText, cookieText] = await Promise.all([
    readIfExists(jwksFile),
    readIfExists(cookieFile),
  ]);

  let jwks = jwksText ? (JSON.parse(jwksText) as unknown) : undefined;
  if (!jwks) {
    jwks = { keys: [newSigningKey()] };
    await writePrivateFile(jwksFile, JSON.stringify(jwks, null, 2));
  }
  let cookieKeys = cookieText ? (JSON.parse(cookieText) as unknown) : undefined;
  if (!cookieKeys) {
    cookieKeys = [randomBytes(32).toString("base64url")];
    await writePrivateFile(cookieFile, JSON.stringify(cookieKeys, null, 2));
  }
  const parsed = secretsSchema.parse({ jwks, cookieKeys });
  return { jwks: { keys: parsed.jwks.keys as JWK[] }, cookieKeys: parsed.cookieKeys };
}

function newSigningKey(): JWK {
  const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const jwk = privateKey.export({ format: "jwk" });
  return { ...jwk, kid: randomUUID(), use: "sig", alg: "RS256" } as JWK;
}

/* ------------------------------------------------------------------------------------------ */

function listen(server: http.Server, port: number, host: string): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve(server.address() as AddressInfo);
    });
  });
}

function closeServer(server: http.Server): Promise<void> {
  return new Promise((resolve, reject) => {
    server.close((error) => (error ? reject(error) : resolve()));
    server.closeAllConnections();
  });
}
