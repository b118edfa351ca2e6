import type http from "node:http";
import type Provider from "oidc-provider";
import { z } from "zod";
import { consentPage, errorPage, loginPage, SCOPE_TEXT } from "./pages";

// The demo provider's own login and consent pages, served in front of oidc-provider's routes
// (lib/demo/provider.ts starts the server and configures the provider).

const KNOWN_SCOPES = new Set(SCOPE_TEXT.map(([scope]) => scope));
const MAX_FORM_BYTES = 16 * 1024;

const emailSchema = z.email();
export function isEmail(value: string): boolean {
  return emailSchema.safeParse(value).success;
}

/* ------------------------------------------------------------------------------------------ */
/* HTTP: our interaction pages in front of the provider                                        */

export function requestHandler(provider: Provider, issuer: string): http.RequestListener {
  const oidc = provider.callback();
  const origin = new URL(issuer).origin;
  return (req, res) => {
    const url = new URL(req.url ?? "/", origin);
    if (!url.pathname.startsWith("/interaction/")) {
      askConsentForOfflineAccess(req, url);
      oidc(req, res);
      return;
    }
    handleInteraction(provider, origin, url, req, res).catch((error: unknown) => {
      sendHtml(res, 400, errorPage(interactionErrorText(error)));
    });
  };
}

/**
 * oidc-provider drops offline_access unless the request says prompt=consent. A demo that
 * silently withheld refresh tokens would only confuse, so a request for offline_access that
 * names no prompt at all is treated as prompt=consent: the consent page (where the person
 * can still untick offline_access) is shown and, if kept, a refresh token is issued.
 */
function askConsentForOfflineAccess(req: http.IncomingMessage, url: URL): void {
  if (req.method !== "GET" || url.pathname !== "/auth") return;
  const scopes = (url.searchParams.get("scope") ?? "").split(" ");
  if (!scopes.includes("offline_access") || url.searchParams.has("prompt")) return;
  url.searchParams.set("prompt", "consent");
  req.url = `${url.pathname}${url.search}`;
}

function interactionErrorText(error: unknown): string {
  const name = error instanceof Error ? error.name : "";
  if (name === "SessionNotFound") {
    return "This sign-in request has expired or was opened in another browser. Start again from the app.";
  }
  return error instanceof Error ? error.message : "Unexpected error";
}

async function handleInteraction(
  provider: Provider,
  origin: string,
  url: URL,
  req: http.IncomingMessage,
  res: http.ServerResponse,
): Promise<void> {
  const [, , uid, action] = url.pathname.split("/");
  if (!uid) return sendHtml(res, 404, errorPage("Not found"));

  if (req.method === "GET" && action === undefined) return showInteraction(provider, req, res);
  if (req.method !== "POST") return sendHtml(res, 405, errorPage("Method not allowed"));
  // The interaction cookie (SameSite=Lax, bound to the uid) already stops cross-site posts;
  // the Origin check is a cheap second belt for browsers that send it.
  const requestOrigin = req.headers.origin;
  if (requestOrigin && requestOrigin !== origin) {
    return sendHtml(res, 403, errorPage("Cross-site form submission refused"));
  }
  const form = await readForm(req);
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) return sendHtml(res, 400, errorPage("Interaction mismatch"));

  switch (action) {
    case "login":
      return submitLogin(provider, details, form, req, res);
    case "confirm":
      return submitConsent(provider, details, form, req, res);
    case "abort":
      return provider.interactionFinished(
        req,
        res,
        { error: "access_denied", error_description: "End-User cancelled the request" },
        { mergeWithLastSubmission: false },
      );
    default:
      return sendHtml(res, 404, errorPage("Not found"));
  }
}

type Details = Awaited<ReturnType<Provider["interactionDetails"]>>;

async function showInteraction(
  provider: Provider,
  req: http.IncomingMessage,
  res: http.ServerResponse,
): Promise<void> {
  const details = await provider.interactionDetails(req, res);
  const clientId = String(details.params.client_id ?? "");
  if (details.prompt.name === "login") {
    const hint = details.params.login_hint;
    return sendHtml(
      res,
      200,
      loginPage({ uid: details.uid, clientId, loginHint: typeof hint === "string" ? hint : "" }),
    );
  }
  if (details.prompt.name === "consent") {
    return sendHtml(
      res,
      200,
      consentPage({
        uid: details.uid,
        clientId,
        accountId: details.session?.accountId ?? "",
        scopes: requestedScopes(details),
      }),
    );
  }
  return sendHtml(res, 400, errorPage(`Unsupported prompt ${details.prompt.name}`));
}

async function submitLogin(
  provider: Provider,
  details: Details,
  form: URLSearchParams,
  req: http.IncomingMessage,
  res: http.ServerResponse,
): Promise<void> {
  if (details.prompt.name !== "login") return sendHtml(res, 400, errorPage("Not a login step"));
  const email = (form.get("email") ?? "").trim().toLowerCase();
  if (!isEmail(email)) {
    const clientId = String(details.params.client_id ?? "");
    return sendHtml(
      res,
      400,
      loginPage({
        uid: details.uid,
        clientId,
        loginHint: email,
        error: "Enter a valid email address.",
      }),
    );
  }
  await provider.interactionFinished(
    req,
    res,
    { login: { accountId: email } },
    { mergeWithLastSubmission: false },
  );
}

async function submitConsent(
  provider: Provider,
  details: Details,
  form: URLSearchParams,
  req: http.IncomingMessage,
  res: http.ServerResponse,
): Promise<void> {
  const accountId = details.session?.accountId;
  const clientId = details.params.client_id;
  if (details.prompt.name !== "consent" || !accountId || typeof clientId !== "string") {
    return sendHtml(res, 400, errorPage("Not a consent step"));
  }
  const requested = requestedScopes(details);
  const ticked = new Set(form.getAll("scope"));
  const granted = requested.filter((scope) => scope === "openid" || ticked.has(scope));
  const rejected = requested.filter((scope) => !granted.includes(scope));

  // A fresh grant per consent: what was unticked now is really gone from the new tokens,
  // while tokens from an earlier consent live on until revoked (as with Google).
  const grant = new provider.Grant({ accountId, clientId });
  if (granted.length > 0) grant.addOIDCScope(granted);
  if (rejected.length > 0) grant.rejectOIDCScope(rejected);
  const grantId = await grant.save();

  await provider.interactionFinished(
    req,
    res,
    { consent: { grantId } },
    { mergeWithLastSubmission: true },
  );
}

function requestedScopes(details: Details): string[] {
  const scope = details.params.scope;
  if (typeof scope !== "string") return [];
  return [...new Set(scope.split(" "))].filter((s) => KNOWN_SCOPES.has(s));
}

async function readForm(req: http.IncomingMessage): Promise<URLSearchParams> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const buffer = chunk as Buffer;
    size += buffer.length;
    if (size > MAX_FORM_BYTES) throw new Error("Form too large");
    chunks.push(buffer);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString("utf8"));
}

function sendHtml(res: http.ServerResponse, status: number, html: string): void {
  res.writeHead(status, {
    "content-type": "text/html; charset=utf-8",
    "cache-control": "no-store",
    "x-frame-options": "DENY",
    "content-security-policy":
      "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
  });
  res.end(html);
}
