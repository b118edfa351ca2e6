import "server-only";
import type { DbOrTx } from "@/db";
import { getUnsealedAuditSummary } from "@/db/queries/audit";
import { listEncryptionKeysSeen } from "@/db/queries/deployment";
import { countMailboxesByStatus, listMailboxesNeedingAction } from "@/db/queries/mailboxes";
import {
  type ClientCredentialFacts,
  getClientCredentialFacts,
} from "@/db/queries/organization-settings";
import { countOverdueDataRequests } from "@/db/queries/privacy";
import { countInstancesSeen } from "@/lib/deployment/heartbeat";
import { env } from "@/lib/env";
import { activeSwitches } from "@/lib/incidents/console";
import { listMailProviders } from "@/lib/oauth/providers";
import { limitStoreStatus } from "@/lib/ratelimit/runtime";
import { HTTPS_PORTS } from "@/lib/webhooks/address";
import { MAX_WAITING_DELIVERIES } from "@/lib/webhooks/breaker";
import { CONCURRENCY, ORG_CONCURRENCY } from "@/lib/webhooks/dispatch";
import { MAX_WEBHOOK_ENDPOINTS } from "@/lib/webhooks/endpoints";
import {
  type Check,
  credentialChecks,
  keyChecks,
  limitBackendCheck,
  type Practice,
  STATIC,
  tlsCheck,
  UNSEALED_ALARM_MS,
} from "./checks";

// The Security page's live facts: each practice of ARCHITECTURE.md "Security practices" with
// what this deployment and this organisation show of it right now. Nothing here is secret: key
// ids, never keys; provider names, never client ids or secrets; counts and addresses of the
// caller's own organisation only.

export type SecurityStatus = {
  practices: Practice[];
  /** Every warning and alarm, for the top of the page and the overview. */
  attention: Check[];
  facts: ClientCredentialFacts;
};

export async function securityStatus({
  db,
  orgId,
  now = new Date(),
}: {
  db: DbOrTx;
  orgId: string;
  now?: Date;
}): Promise<SecurityStatus> {
  const e = env();
  const providers = listMailProviders();
  const [
    facts,
    keysSeen,
    store,
    instancesSeen,
    counts,
    needingAction,
    unsealed,
    switchesOn,
    overdue,
  ] = await Promise.all([
    getClientCredentialFacts({ db, orgId }),
    listEncryptionKeysSeen({ db }),
    limitStoreStatus(),
    countInstancesSeen(now),
    countMailboxesByStatus({ db, orgId }),
    listMailboxesNeedingAction({ db, orgId }),
    getUnsealedAuditSummary({ db, chain: orgId }),
    activeSwitches({ db, orgId }),
    countOverdueDataRequests({ db, orgId }),
  ]);

  const https = e.APP_URL.startsWith("https://");
  const providerNames = providers.map((p) => p.label).join(", ");
  const unsealedLate =
    unsealed.oldest !== null && now.getTime() - unsealed.oldest.getTime() > UNSEALED_ALARM_MS;

  const mailboxChecks: Check[] = needingAction.map((m) => ({
    level: "warning",
    text: `${m.address} ${m.status === "needs_reconnect" ? "needs reconnecting" : "needs an administrator of its account"}: it cannot send.`,
    href: `/mailboxes?status=${m.status}#mailbox-${m.id}`,
    linkText: "Open the mailbox",
  }));

  const practices: Practice[] = [
    {
      number: 1,
      title: "The app's own credentials stay on the server",
      explanation:
        "The client ids and secrets Mailwarden uses at Google and Microsoft come from the server's settings. They are never sent to your browser and never written to logs.",
      checks: [
        providers.length > 0
          ? { level: "ok", text: `Providers configured: ${providerNames}.` }
          : { level: "alarm", text: "No mail provider is configured." },
        ...credentialChecks(facts, now),
      ],
    },
    {
      number: 2,
      title: "Tokens are stored encrypted; sessions are protected cookies",
      explanation:
        "The tokens that let Mailwarden send for a mailbox are only ever stored encrypted. Your session cookie cannot be read by scripts and is sent only to this site.",
      checks: [
        https
          ? { level: "ok", text: "Session cookies are Secure (this site runs on https)." }
          : {
              level: e.isDemo ? "info" : "warning",
              text: "This site runs on http, so cookies cannot be marked Secure. Use https outside a local demo.",
            },
      ],
    },
    {
      number: 3,
      title: "Disconnecting a mailbox revokes its access at the provider",
      explanation:
        "When a mailbox is disconnected, Mailwarden asks the provider to cancel the grant where the provider allows it, and tells you plainly where it does not.",
      checks: providers.map((p) =>
        p.revocationEndpoint
          ? { level: "ok", text: `${p.label}: revoked at the provider.` }
          : {
              level: "info",
              text: `${p.label}: the provider offers no revocation for this app; tokens are destroyed here and the person removes the app from their account.`,
            },
      ),
    },
    {
      number: 4,
      title: "Strong encryption with keys that can be rotated",
      explanation:
        "Each token is encrypted with AES-256-GCM and bound to its place in the database, so a copied value is useless elsewhere. Keys have ids; a new key can be added and old tokens re-encrypted.",
      checks: keyChecks(keysSeen, now),
    },
    {
      number: 5,
      title: "Connections follow the current OAuth security advice",
      explanation:
        "Every connection uses PKCE, a one-time state, a nonce and an exact return address per provider, and checks which provider answered, so a response cannot be forged or swapped.",
      checks: [STATIC],
    },
    {
      number: 6,
      title: "Access is refreshed safely, and broken mailboxes are flagged",
      explanation:
        "Mailwarden renews access before it expires, one renewal at a time. When a provider ends a grant for good, the mailbox is marked and the people who can fix it are told.",
      checks:
        mailboxChecks.length > 0
          ? mailboxChecks
          : [
              {
                level: "ok",
                text: `No mailbox needs reconnecting or an administrator (${counts.connected} connected).`,
              },
            ],
    },
    {
      number: 7,
      title: "Sign-in asks only for who you are",
      explanation:
        "Signing in asks only for your name and email address. Access to mail is asked for separately, only when an administrator connects a mailbox.",
      checks: [STATIC],
    },
    {
      number: 8,
      title: "You see what is asked before you go to the provider",
      explanation:
        "Our own page explains each permission before the provider's consent screen, and after it we check that what was granted is what is needed.",
      checks: [STATIC],
    },
    {
      number: 9,
      title: "Mail travels only over verified TLS",
      explanation:
        "Mailwarden talks to the providers' mail servers only over TLS 1.2 or newer and checks their certificates; it never falls back to an unencrypted connection.",
      checks:
        providers.length > 0
          ? providers.map(tlsCheck)
          : [{ level: "info", text: "No provider configured yet." }],
    },
    {
      number: 10,
      title: "Messages are checked before they are sent",
      explanation:
        "Messages are built from separate fields, never raw text: header injection is refused, sizes are bounded and HTML is cleaned.",
      checks: [STATIC],
    },
    {
      number: 11,
      title: "Everything that matters is recorded, tamper-evidently",
      explanation:
        "Every sign-in, connection, send and administrative change is an event in the activity log, chained so that an edit or a deletion is detected.",
      checks: [
        unsealed.count === 0
          ? { level: "ok", text: "Every event of your organisation is sealed into the chain." }
          : unsealedLate
            ? {
                level: "alarm",
                text: `${unsealed.count} event${unsealed.count === 1 ? " is" : "s are"} not sealed, the oldest for over a minute: the sealer is stuck or refused the chain.`,
                href: "/activity",
                linkText: "Open the activity log",
              }
            : {
                level: "ok",
                text: `${unsealed.count} recent event${unsealed.count === 1 ? " is" : "s are"} waiting to be sealed (within seconds).`,
              },
      ],
    },
    {
      number: 12,
      title: "Dependencies are watched",
      explanation:
        "Known high-severity vulnerabilities in the libraries Mailwarden uses fail its build, and updates are proposed automatically.",
      checks: [{ level: "info", text: "Checked when Mailwarden is built, not at run time." }],
    },
    {
      number: 13,
      title: "Rate limits slow down abuse",
      explanation:
        "Sign-ins, connections, token renewals, sends per mailbox (at the providers' own limits) and each API key are limited. If the limit store fails, requests are refused rather than let through.",
      checks: [limitBackendCheck(store, instancesSeen)],
    },
    {
      number: 14,
      title: "This page",
      explanation:
        "Each practice with its live status, so nothing here is a promise you cannot check.",
      checks: [{ level: "ok", text: `Checked just now (${now.toISOString().slice(0, 16)} UTC).` }],
    },
    {
      number: 15,
      title: "Incident switches and a runbook",
      explanation:
        "Administrators can pause all sending, pause a mailbox, block new connections, revoke every mailbox, sign everyone out and rotate the key from the browser, with a runbook that says when.",
      checks:
        switchesOn.length > 0
          ? switchesOn.map((s) => ({
              level: "warning" as const,
              text: `On${s.scope === "global" ? " for every organisation" : ""}: ${s.kind === "pause_sending" ? "all sending is paused" : "new connections are blocked"} — ${s.reason}.`,
              href: "/incidents",
              linkText: "Incidents",
            }))
          : [
              {
                level: "ok",
                text: "No switch is on.",
                href: "/runbook",
                linkText: "Read the runbook",
              },
            ],
    },
    {
      number: 16,
      title: "People can get or erase their data",
      explanation:
        "A person can download what Mailwarden holds about them, and compliance officers answer export and erasure requests with receipts.",
      checks: [
        overdue > 0
          ? {
              level: "warning",
              text: `${overdue} data request${overdue === 1 ? " is" : "s are"} overdue.`,
              href: "/privacy",
              linkText: "Data requests",
            }
          : { level: "ok", text: "No data request is overdue." },
      ],
    },
    {
      number: 17,
      title: "Organisations are kept apart",
      explanation:
        "Everything you see and do is limited to your active organisation. Joining needs the invited person's own click, and an organisation always keeps an owner.",
      checks: [STATIC],
    },
    {
      number: 18,
      title: "Addresses in the log are the real ones",
      explanation:
        "The address recorded for a request is the connection's own, or the one named by a proxy this deployment trusts — never a header anyone can write.",
      checks: [
        {
          level: "ok",
          text:
            e.TRUSTED_PROXY_HOPS === 0
              ? "No proxy is trusted: the connection's own address is used."
              : `${e.TRUSTED_PROXY_HOPS} trusted proxy hop${e.TRUSTED_PROXY_HOPS === 1 ? "" : "s"}.`,
        },
      ],
    },
    {
      number: 19,
      title: "Browsers are told to protect the pages",
      explanation:
        "Every response carries a strict Content-Security-Policy with a fresh nonce, refuses to be framed and sets the other protective headers.",
      checks: [
        https
          ? { level: "ok", text: "Served over https, with HSTS." }
          : {
              level: e.isDemo ? "info" : "warning",
              text: "Served over http: fine on this machine, refused in production anywhere else.",
            },
      ],
    },
    {
      number: 20,
      title: "Untrusted input cannot stall the server",
      explanation:
        "Everything read from outside is parsed in linear time, and only after the cheap checks have passed.",
      checks: [STATIC],
    },
    {
      number: 21,
      title: "Webhooks are signed and go only where they should",
      explanation: `Each webhook endpoint has its own signing secret (Standard Webhooks), stored encrypted and shown once; outside demo mode webhooks go only over https, on port ${[...HTTPS_PORTS].join(" or ")}, to public addresses, checked after DNS at every delivery, without following redirects. An organisation has at most ${MAX_WEBHOOK_ENDPOINTS} endpoints and at most ${ORG_CONCURRENCY} of each server process's ${CONCURRENCY} delivery workers at once, so one organisation's receivers that hang cannot hold up every other organisation's webhooks; an endpoint with more than ${MAX_WAITING_DELIVERIES.toLocaleString("en")} deliveries waiting is turned off and what waits for it cancelled.`,
      checks: [
        e.isDemo
          ? {
              level: "info",
              text: "Demo mode: webhooks may go to local addresses over plain http and to any port, so that a receiver on this machine works.",
            }
          : STATIC,
      ],
    },
  ];

  const attention = practices.flatMap((p) =>
    p.checks.filter((c) => c.level === "warning" || c.level === "alarm"),
  );
  return { practices, attention, facts };
}

export {
  type Check,
  credentialChecks,
  daysUntil,
  KEY_ROTATION_DAYS,
  type Level,
  limitBackendCheck,
  type Practice,
  SECRET_WARNING_DAYS,
  UNSEALED_ALARM_MS,
} from "./checks";
