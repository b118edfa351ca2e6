import "server-only";
import { PROVIDER_IDS, type ProviderId } from "@/db/schema";
import { DEMO_MAIL_SCOPE, readDemoClients } from "@/lib/demo";
import { env } from "@/lib/env";

export {
  classifyTokenError,
  missingScopeFailure,
  PERMANENT_TOKEN_ERRORS,
  type PermanentTokenError,
  type TokenErrorClassification,
  type TokenErrorResponse,
} from "./token-errors";

/** `ca`: a PEM trust anchor for this server (the demo CA, or a test server's); checks stay on. */
export type SmtpSettings = {
  host: string;
  port: number;
  secure: boolean;
  requireTLS: boolean;
  ca?: string;
  /** Concurrent SMTP connections per mailbox across every process (Microsoft 365: 3). */
  maxConnections: number;
  /** Messages a minute per mailbox: the queue's pace, the synchronous route's minute limit. */
  messagesPerMinute: number;
};

/** The per-mailbox connection cap and pace of a provider, from the settings (lib/env.ts). */
export function smtpLimitsFor(
  id: ProviderId,
): Pick<SmtpSettings, "maxConnections" | "messagesPerMinute"> {
  const e = env();
  if (id === "microsoft") {
    return {
      maxConnections: e.SMTP_MAX_CONNECTIONS_MICROSOFT,
      messagesPerMinute: e.SMTP_PER_MINUTE_MICROSOFT,
    };
  }
  if (id === "google") {
    return {
      maxConnections: e.SMTP_MAX_CONNECTIONS_GOOGLE,
      messagesPerMinute: e.SMTP_PER_MINUTE_GOOGLE,
    };
  }
  return { maxConnections: e.SMTP_MAX_CONNECTIONS_DEMO, messagesPerMinute: e.SMTP_PER_MINUTE_DEMO };
}

export type MailProvider = {
  id: ProviderId;
  label: string;
  issuer: string;
  authorizationEndpoint: string;
  tokenEndpoint: string;
  /** RFC 7009 endpoint; null where the provider has none (Microsoft). */
  revocationEndpoint: string | null;
  /** RFC 7662 endpoint where the provider offers one to this client (the demo provider). */
  introspectionEndpoint?: string | null;
  /**
   * Revoking any token ends every grant of the account to this client (Google), not only the
   * grant it came from: revoking a fresh grant would then cut off mailboxes in use.
   */
  revocationEndsAccountGrants: boolean;
  /** The scopes without which a mailbox cannot send (SMTP XOAUTH2). */
  mailScopes: string[];
  scopesToRequest(): string[];
  authorizationParams(opts: {
    hasRefreshToken: boolean;
    loginHint?: string;
  }): Record<string, string>;
  /** Microsoft issues tokens for one resource only: the refresh must name it again. */
  sendScopeOnRefresh: boolean;
  clientId: string;
  clientSecret: string;
  tokenEndpointAuthMethod: "client_secret_basic" | "client_secret_post";
  /**
   * Fetch the provider's metadata with openid-client's discovery at callback time instead of
   * building it from the fields above: Entra's multi-tenant issuer is a `{tenantid}` template
   * that only openid-client's discovery path knows how to match against the ID token.
   */
  useDiscovery: boolean;
  /**
   * The provider advertises `authorization_response_iss_parameter_supported` (RFC 9207): a
   * callback without `iss` is then refused. Where it sends `iss` unadvertised (Google), a
   * present `iss` must still match.
   */
  requiresIssInResponse: boolean;
  /** The refresh and revocation requests give up after this long; default 10 s. */
  requestTimeoutMs?: number;
  smtp: SmtpSettings;
  tenant?: string;
};

type Credentials = { clientId: string; clientSecret: string };

const GOOGLE_MAIL_SCOPE = "https://mail.google.com/";
const MICROSOFT_MAIL_SCOPE = "https://outlook.office.com/SMTP.Send";

function withLoginHint(params: Record<string, string>, loginHint?: string) {
  return loginHint ? { ...params, login_hint: loginHint } : params;
}

export function buildGoogleProvider(credentials: Credentials): MailProvider {
  return {
    id: "google",
    label: "Google (Gmail, Google Workspace)",
    issuer: "https://accounts.google.com",
    authorizationEndpoint: "https://accounts.google.com/o/oauth2/v2/auth",
    tokenEndpoint: "https://oauth2.googleapis.com/token",
    revocationEndpoint: "https://oauth2.googleapis.com/revoke",
    revocationEndsAccountGrants: true,
    mailScopes: [GOOGLE_MAIL_SCOPE],
    scopesToRequest: () => ["openid", "email", GOOGLE_MAIL_SCOPE],
    // A refresh token comes only with prompt=consent, and every consent mints a new one that
    // counts against Google's ~100 live tokens per account: ask only when we hold none.
    authorizationParams: ({ hasRefreshToken, loginHint }) =>
      withLoginHint(
        {
          access_type: "offline",
          include_granted_scopes: "true",
          ...(hasRefreshToken ? {} : { prompt: "consent" }),
        },
        loginHint,
      ),
    sendScopeOnRefresh: false,
    ...credentials,
    tokenEndpointAuthMethod: "client_secret_post",
    useDiscovery: false,
    requiresIssInResponse: false,
    smtp: {
      host: "smtp.gmail.com",
      port: 465,
      secure: true,
      requireTLS: false,
      ...smtpLimitsFor("google"),
    },
  };
}

export function buildMicrosoftProvider(
  credentials: Credentials & { tenant: string },
): MailProvider {
  const authority = `https://login.microsoftonline.com/${credentials.tenant}`;
  return {
    id: "microsoft",
    label: "Microsoft 365 / Outlook",
    issuer: `${authority}/v2.0`,
    authorizationEndpoint: `${authority}/oauth2/v2.0/authorize`,
    tokenEndpoint: `${authority}/oauth2/v2.0/token`,
    revocationEndpoint: null,
    revocationEndsAccountGrants: false,
    mailScopes: [MICROSOFT_MAIL_SCOPE],
    // One token, one audience: a Graph scope here (User.Read) would yield a token SMTP refuses.
    // `profile` is an OpenID scope, not Graph: without it the ID token carries no `oid`.
    scopesToRequest: () => [MICROSOFT_MAIL_SCOPE, "offline_access", "openid", "email", "profile"],
    authorizationParams: ({ loginHint }) => withLoginHint({}, loginHint),
    sendScopeOnRefresh: true,
    clientId: credentials.clientId,
    clientSecret: credentials.clientSecret,
    tokenEndpointAuthMethod: "client_secret_post",
    useDiscovery: true,
    requiresIssInResponse: false,
    smtp: {
      host: "smtp.office365.com",
      port: 587,
      secure: false,
      requireTLS: true,
      ...smtpLimitsFor("microsoft"),
    },
    tenant: credentials.tenant,
  };
}

export type DemoProviderSettings = Credentials & {
  issuer: string;
  smtpPort: number;
  /** Tests put a counting proxy in front of the token endpoint. */
  tokenEndpoint?: string;
  revocationEndpoint?: string;
};

/** oidc-provider's default routes (lib/demo/provider.ts keeps them). */
export function buildDemoProvider(settings: DemoProviderSettings): MailProvider {
  const issuer = settings.issuer.replace(/\/+$/, "");
  return {
    id: "demo",
    label: "Demo mailbox (local testing only)",
    issuer,
    authorizationEndpoint: `${issuer}/auth`,
    tokenEndpoint: settings.tokenEndpoint ?? `${issuer}/token`,
    revocationEndpoint: settings.revocationEndpoint ?? `${issuer}/token/revocation`,
    introspectionEndpoint: `${issuer}/token/introspection`,
    // Each consent is its own grant there: revoking one leaves the account's others alone.
    revocationEndsAccountGrants: false,
    mailScopes: [DEMO_MAIL_SCOPE],
    scopesToRequest: () => ["openid", "email", "offline_access", DEMO_MAIL_SCOPE],
    // oidc-provider issues a refresh token only on an explicit prompt=consent.
    authorizationParams: ({ hasRefreshToken, loginHint }) =>
      withLoginHint(hasRefreshToken ? {} : { prompt: "consent" }, loginHint),
    sendScopeOnRefresh: false,
    clientId: settings.clientId,
    clientSecret: settings.clientSecret,
    tokenEndpointAuthMethod: "client_secret_basic",
    useDiscovery: false,
    requiresIssInResponse: true,
    smtp: {
      host: "localhost",
      port: settings.smtpPort,
      secure: true,
      requireTLS: false,
      ...smtpLimitsFor("demo"),
    },
  };
}

function demoFromEnv(): MailProvider | null {
  const e = env();
  if (!e.isDemo) return null;
  try {
    const { mailbox } = readDemoClients(e.dataDir);
    return buildDemoProvider({ ...mailbox, issuer: e.demoIssuer, smtpPort: e.DEMO_SMTP_PORT });
  } catch {
    // The demo services write their client file on start; until then the demo is not available.
    return null;
  }
}

function buildFromEnv(id: ProviderId): MailProvider | null {
  const e = env();
  if (id === "google") return e.google ? buildGoogleProvider(e.google) : null;
  if (id === "microsoft") return e.microsoft ? buildMicrosoftProvider(e.microsoft) : null;
  return demoFromEnv();
}

// The environment does not change within a process: build each provider once, so that
// per-provider caches (openid-client configurations) hold.
const builtFromEnv = new Map<ProviderId, MailProvider>();

function fromEnv(id: ProviderId): MailProvider | null {
  const cached = builtFromEnv.get(id);
  if (cached) return cached;
  const provider = buildFromEnv(id);
  if (provider) builtFromEnv.set(id, provider);
  return provider;
}

// Test seam: tests point a provider id at a local server (the demo provider on a free port, a
// stub of Microsoft's token endpoint). The app itself never registers anything.
const holder = globalThis as typeof globalThis & {
  __mailwardenMailProviders?: Map<ProviderId, MailProvider>;
};
holder.__mailwardenMailProviders ??= new Map();
const registered = holder.__mailwardenMailProviders;

/** Test seam: this provider answers getMailProvider(p.id) until resetMailProviders(). */
export function registerMailProvider(provider: MailProvider): void {
  registered.set(provider.id, provider);
}

/** Test seam: back to the providers the environment configures. */
export function resetMailProviders(): void {
  registered.clear();
  builtFromEnv.clear();
}

export function isProviderId(id: string): id is ProviderId {
  return (PROVIDER_IDS as readonly string[]).includes(id);
}

/** A configured provider, or null (unknown id, or no credentials for it here). */
export function getMailProvider(id: string): MailProvider | null {
  if (!isProviderId(id)) return null;
  return registered.get(id) ?? fromEnv(id);
}

export function listMailProviders(): MailProvider[] {
  return PROVIDER_IDS.map(getMailProvider).filter((p): p is MailProvider => p !== null);
}

/** One exact redirect URI per provider (RFC 9700 mix-up defence). */
export function redirectUriFor(id: ProviderId): string {
  return `${env().APP_URL}/api/oauth/${id}/callback`;
}

/**
 * Whether `granted` contains `scope`. Microsoft may answer a resource scope without its
 * resource prefix, and scope strings are compared case-insensitively there.
 */
export function hasScope(provider: MailProvider, granted: string[], scope: string): boolean {
  if (provider.id !== "microsoft") return granted.includes(scope);
  const bare = (s: string) =>
    s.toLowerCase().replace(/^https:\/\/outlook\.office(365)?\.com\//, "");
  return granted.some((g) => bare(g) === bare(scope));
}

export function missingMailScopes(provider: MailProvider, granted: string[]): string[] {
  return provider.mailScopes.filter((scope) => !hasScope(provider, granted, scope));
}

/**
 * What a refresh's answer says the grant no longer holds: a mail scope (Google's granular
 * consent lets a person take one back), or offline access where it is a scope we ask for. Scopes
 * not named mean unchanged (RFC 6749 §5.1). Microsoft need not echo offline_access while it still
 * rotates the refresh token, so only an answer with neither counts it as gone.
 */
export function scopesLostOnRefresh(
  provider: MailProvider,
  answer: { scopes: string[] | null; refreshToken: string | null },
): string[] {
  if (!answer.scopes) return [];
  const missing = missingMailScopes(provider, answer.scopes);
  const offline = "offline_access";
  if (
    provider.scopesToRequest().includes(offline) &&
    !answer.refreshToken &&
    !hasScope(provider, answer.scopes, offline)
  ) {
    missing.push(offline);
  }
  return missing;
}

/**
 * The provider's stable, non-reassignable id of the account, from the ID token: Microsoft's
 * `oid` is per tenant, so the tenant is part of it; elsewhere `sub`. Null when absent.
 */
export function subjectFromClaims(
  provider: Pick<MailProvider, "id">,
  claims: Record<string, unknown> | undefined,
): string | null {
  const text = (name: string) => {
    const value = claims?.[name];
    return typeof value === "string" && value.length > 0 && value.length <= 255 ? value : null;
  };
  if (provider.id === "microsoft") {
    const tid = text("tid");
    const oid = text("oid");
    return tid && oid ? `${tid.toLowerCase()}:${oid.toLowerCase()}` : null;
  }
  return text("sub");
}

const GUID = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}";

/**
 * Whether an `iss` from the authorization response names this provider. A multi-tenant
 * Microsoft authority (common, organizations, consumers) answers with the account's own
 * tenant in the issuer, so only there a tenant id stands in for the configured segment.
 */
export function isProviderIssuer(provider: MailProvider, iss: string): boolean {
  if (iss === provider.issuer) return true;
  if (
    provider.id !== "microsoft" ||
    !provider.tenant ||
    new RegExp(`^${GUID}$`, "i").test(provider.tenant)
  ) {
    return false;
  }
  return new RegExp(`^https://login\\.microsoftonline\\.com/${GUID}/v2\\.0$`, "i").test(iss);
}
