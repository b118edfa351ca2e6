import "server-only";
import { z } from "zod";
import type { MailProvider } from "./providers";
import type { TokenErrorResponse } from "./token-errors";

// The refresh and revocation requests, by hand: the classification of failures needs the raw
// status and body (Microsoft's error_codes), and a timeout we choose, which openid-client's
// error types would hide behind its own.

const DEFAULT_TIMEOUT_MS = 10_000;

const tokenResponseSchema = z.object({
  access_token: z.string().min(1),
  expires_in: z.coerce.number().positive().optional(),
  refresh_token: z.string().min(1).optional(),
  scope: z.string().optional(),
});

export type RefreshedTokens = {
  accessToken: string;
  expiresAt: Date;
  /** Present when the provider rotated the refresh token: the old one is now dead. */
  refreshToken: string | null;
  scopes: string[] | null;
};

export type TokenCallResult<T> = { ok: true; value: T } | ({ ok: false } & TokenErrorResponse);

function request(provider: MailProvider, form: Record<string, string>): RequestInit {
  const headers: Record<string, string> = {
    "content-type": "application/x-www-form-urlencoded",
    accept: "application/json",
  };
  const body = new URLSearchParams(form);
  if (provider.tokenEndpointAuthMethod === "client_secret_basic") {
    // RFC 6749 §2.3.1: each part is form-encoded before they are joined.
    const id = encodeURIComponent(provider.clientId);
    const secret = encodeURIComponent(provider.clientSecret);
    headers.authorization = `Basic ${Buffer.from(`${id}:${secret}`).toString("base64")}`;
  } else {
    body.set("client_id", provider.clientId);
    body.set("client_secret", provider.clientSecret);
  }
  return {
    method: "POST",
    headers,
    body,
    redirect: "manual",
    signal: AbortSignal.timeout(provider.requestTimeoutMs ?? DEFAULT_TIMEOUT_MS),
  };
}

async function post(
  provider: MailProvider,
  url: string,
  form: Record<string, string>,
): Promise<{ status: number; body: unknown } | { networkError: string }> {
  try {
    const response = await fetch(url, request(provider, form));
    const text = await response.text();
    let body: unknown = null;
    try {
      body = text ? JSON.parse(text) : null;
    } catch {
      body = null;
    }
    return { status: response.status, body };
  } catch (error) {
    const name = (error as Error).name;
    return {
      networkError: name === "TimeoutError" || name === "AbortError" ? "timeout" : "network",
    };
  }
}

export async function refreshAccessToken(
  provider: MailProvider,
  refreshToken: string,
): Promise<TokenCallResult<RefreshedTokens>> {
  const form: Record<string, string> = { grant_type: "refresh_token", refresh_token: refreshToken };
  if (provider.sendScopeOnRefresh) {
    form.scope = provider.scopesToRequest().join(" ");
  }
  const answer = await post(provider, provider.tokenEndpoint, form);
  if ("networkError" in answer) return { ok: false, status: null, body: null, ...answer };
  const parsed = tokenResponseSchema.safeParse(answer.body);
  if (answer.status !== 200 || !parsed.success) {
    return { ok: false, status: answer.status, body: answer.body };
  }
  const tokens = parsed.data;
  return {
    ok: true,
    value: {
      accessToken: tokens.access_token,
      expiresAt: new Date(Date.now() + (tokens.expires_in ?? 3600) * 1000),
      refreshToken:
        tokens.refresh_token && tokens.refresh_token !== refreshToken ? tokens.refresh_token : null,
      scopes: tokens.scope ? tokens.scope.split(" ").filter(Boolean) : null,
    },
  };
}

export type RevocationAnswer = { ok: true; status: number } | ({ ok: false } & TokenErrorResponse);

/** RFC 7009. A 200 means revoked (also for a token the provider no longer knows). */
export async function revokeToken(
  provider: MailProvider,
  token: string,
  hint: "refresh_token" | "access_token",
): Promise<RevocationAnswer> {
  if (!provider.revocationEndpoint) return { ok: false, status: null, body: null };
  const answer = await post(provider, provider.revocationEndpoint, {
    token,
    token_type_hint: hint,
  });
  if ("networkError" in answer) return { ok: false, status: null, body: null, ...answer };
  if (answer.status === 200) return { ok: true, status: 200 };
  return { ok: false, status: answer.status, body: answer.body };
}

/**
 * RFC 7662: whether the provider still honours a token. Null where the provider offers no
 * introspection or did not answer clearly: the caller must then assume it is active.
 */
export async function isTokenActive(
  provider: MailProvider,
  token: string,
  hint: "refresh_token" | "access_token",
): Promise<boolean | null> {
  if (!provider.introspectionEndpoint) return null;
  const answer = await post(provider, provider.introspectionEndpoint, {
    token,
    token_type_hint: hint,
  });
  if ("networkError" in answer || answer.status !== 200) return null;
  const active = (answer.body as { active?: unknown } | null)?.active;
  return typeof active === "boolean" ? active : null;
}
