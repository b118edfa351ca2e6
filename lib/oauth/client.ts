import "server-only";
import * as oidc from "openid-client";
import type { MailProvider } from "./providers";

// openid-client configurations, one per provider object (the registry builds each once).

const REQUEST_TIMEOUT_SECONDS = 10;

const configurations = new WeakMap<MailProvider, Promise<oidc.Configuration>>();

/** Plain http is allowed for the demo provider alone (it runs on loopback). */
export function allowsInsecureHttp(provider: MailProvider): boolean {
  return provider.id === "demo" && new URL(provider.issuer).protocol === "http:";
}

function clientAuth(provider: MailProvider): oidc.ClientAuth {
  return provider.tokenEndpointAuthMethod === "client_secret_basic"
    ? oidc.ClientSecretBasic(provider.clientSecret)
    : oidc.ClientSecretPost(provider.clientSecret);
}

async function build(provider: MailProvider): Promise<oidc.Configuration> {
  const insecure = allowsInsecureHttp(provider);
  if (provider.useDiscovery) {
    return oidc.discovery(
      new URL(provider.issuer),
      provider.clientId,
      undefined,
      clientAuth(provider),
      { execute: insecure ? [oidc.allowInsecureRequests] : [], timeout: REQUEST_TIMEOUT_SECONDS },
    );
  }
  const config = new oidc.Configuration(
    {
      issuer: provider.issuer,
      authorization_endpoint: provider.authorizationEndpoint,
      token_endpoint: provider.tokenEndpoint,
      ...(provider.revocationEndpoint ? { revocation_endpoint: provider.revocationEndpoint } : {}),
      authorization_response_iss_parameter_supported: provider.requiresIssInResponse,
    },
    provider.clientId,
    undefined,
    clientAuth(provider),
  );
  if (insecure) oidc.allowInsecureRequests(config);
  config.timeout = REQUEST_TIMEOUT_SECONDS;
  return config;
}

export function clientConfiguration(provider: MailProvider): Promise<oidc.Configuration> {
  let config = configurations.get(provider);
  if (!config) {
    config = build(provider);
    // A failed discovery (network) must not stick for the life of the process.
    config.catch(() => configurations.delete(provider));
    configurations.set(provider, config);
  }
  return config;
}
