import { escapeHtml } from "./files";

/** Plain-language text for each scope the demo provider knows, in display order. */
export const SCOPE_TEXT: ReadonlyArray<readonly [scope: string, text: string]> = [
  ["openid", "Confirm who you are to the app (always required)."],
  ["email", "See your email address."],
  ["profile", "See your name."],
  ["mail.send", "Send email as you from your demo mailbox."],
  [
    "offline_access",
    "Keep this access when you are not using the app (the app gets a refresh token).",
  ],
];

const STYLE = `
body{font:16px/1.5 system-ui,sans-serif;background:#f4f4f5;color:#18181b;margin:0;padding:2rem 1rem}
main{max-width:28rem;margin:0 auto;background:#fff;border:1px solid #e4e4e7;border-radius:.75rem;padding:1.5rem}
.banner{background:#fef3c7;border:1px solid #f59e0b;color:#78350f;border-radius:.5rem;padding:.5rem .75rem;font-size:.875rem;margin-bottom:1rem}
h1{font-size:1.25rem;margin:0 0 1rem}
label{display:block;font-weight:600;margin-bottom:.25rem}
input[type=email]{width:100%;box-sizing:border-box;padding:.5rem;border:1px solid #a1a1aa;border-radius:.375rem;font:inherit}
ul{list-style:none;padding:0;margin:0 0 1rem}
li{display:flex;gap:.5rem;align-items:flex-start;padding:.5rem 0;border-bottom:1px solid #f4f4f5}
li label{font-weight:400;margin:0}
code{font-size:.8rem;color:#52525b}
.actions{display:flex;gap:.5rem;margin-top:1rem}
button{font:inherit;padding:.5rem 1rem;border-radius:.375rem;border:1px solid #18181b;cursor:pointer}
button.primary{background:#18181b;color:#fff}
button.secondary{background:#fff;color:#18181b}
.error{color:#b91c1c}
.hint{font-size:.875rem;color:#52525b}
`;

function layout(title: string, body: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)} · Demo provider</title>
<style>${STYLE}</style>
</head>
<body>
<main>
<p class="banner" role="note">Demo provider — for local testing only</p>
${body}
</main>
</body>
</html>`;
}

export function loginPage(opts: {
  uid: string;
  clientId: string;
  loginHint?: string;
  error?: string;
}): string {
  const uid = encodeURIComponent(opts.uid);
  const error = opts.error ? `<p class="error" role="alert">${escapeHtml(opts.error)}</p>` : "";
  return layout(
    "Sign in",
    `<h1>Sign in to the demo provider</h1>
<p>Continue to <strong>${escapeHtml(opts.clientId)}</strong>. Any email address works; there is no password.</p>
<p class="hint">To see a mailbox at a provider's limit, tag its address: <code>name+limit@example.com</code> has reached its daily sending limit, <code>+full</code> is full, <code>+busy</code> asks to try again later, <code>+drop</code> takes each message but drops the connection before its reply.</p>
${error}
<form method="post" action="/interaction/${uid}/login">
<label for="email">Email</label>
<input id="email" name="email" type="email" required autocomplete="email" autofocus value="${escapeHtml(opts.loginHint ?? "")}">
<div class="actions">
<button class="primary" type="submit">Sign in</button>
<button class="secondary" type="submit" formaction="/interaction/${uid}/abort" formnovalidate>Cancel</button>
</div>
</form>`,
  );
}

export function consentPage(opts: {
  uid: string;
  clientId: string;
  accountId: string;
  scopes: string[];
}): string {
  const uid = encodeURIComponent(opts.uid);
  const items = SCOPE_TEXT.filter(([scope]) => opts.scopes.includes(scope))
    .map(([scope, text]) => scopeItem(scope, text))
    .join("\n");
  return layout(
    "Allow access",
    `<h1>Allow access?</h1>
<p><strong>${escapeHtml(opts.clientId)}</strong> wants to access your demo account <strong>${escapeHtml(opts.accountId)}</strong>. Untick anything you do not want to share.</p>
<form method="post" action="/interaction/${uid}/confirm">
<ul>
${items}
</ul>
<div class="actions">
<button class="primary" type="submit">Allow</button>
<button class="secondary" type="submit" formaction="/interaction/${uid}/abort">Cancel</button>
</div>
</form>`,
  );
}

function scopeItem(scope: string, text: string): string {
  const id = `scope-${scope.replace(/[^a-z0-9]/gi, "-")}`;
  // openid is what makes this an OpenID sign-in at all, so it cannot be unticked; the
  // server adds it regardless of what the form sends.
  const attrs = scope === "openid" ? "checked disabled" : "checked";
  return `<li><input type="checkbox" id="${id}" name="scope" value="${escapeHtml(scope)}" ${attrs}>
<label for="${id}">${escapeHtml(text)} <code>${escapeHtml(scope)}</code></label></li>`;
}

export function errorPage(message: string): string {
  return layout(
    "Error",
    `<h1>Something went wrong</h1><p class="error" role="alert">${escapeHtml(message)}</p>`,
  );
}
