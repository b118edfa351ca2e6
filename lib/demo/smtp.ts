import { randomUUID } from "node:crypto";
import type { AddressInfo } from "node:net";
import path from "node:path";
import {
  SMTPServer,
  type SMTPServerAuthentication,
  type SMTPServerAuthenticationResponse,
  type SMTPServerDataStream,
  type SMTPServerSession,
} from "smtp-server";
import { assertLoopback, DEMO_MAIL_SCOPE, writePrivateFile } from "./files";
import { demoInboxDir, type StoredMessage } from "./inbox";

export type Introspection = { active: boolean; scope?: string; sub?: string; email?: string };

export type AuthOverride = (ctx: {
  username: string;
  token: string;
}) => null | { code: number; message: string } | Promise<null | { code: number; message: string }>;

export type DemoSmtpOptions = {
  port: number;
  host?: string;
  dataDir: string;
  tls: { key: string; cert: string };
  /** "implicit" is TLS from the first byte (Gmail 465); "starttls" upgrades (Microsoft 587). */
  mode?: "implicit" | "starttls";
  introspect: (token: string) => Promise<Introspection>;
  /** Tests: answer AUTH like Microsoft (e.g. 535 5.7.139, 454 4.7.0) instead of checking. */
  authOverride?: AuthOverride;
  /** Microsoft-style limits per mailbox (PROVIDERS.md): off when absent. */
  limits?: DemoSmtpLimits;
  /** Tests and benches: answer a mailbox's messages the way a provider does at its limits. */
  behaviour?: (mailbox: string) => DemoBehaviour | null;
};

export type DemoSmtpLimits = {
  /** Authenticated sessions of one mailbox at once; the next AUTH gets 432 4.3.2. */
  maxConnectionsPerMailbox?: number;
  /** Messages per mailbox per `windowMs`. Microsoft delays the excess rather than refusing
   * it, so the excess is accepted and counted in `overRate`. */
  messagesPerWindow?: number;
  windowMs?: number;
};

/** Provider replies at a limit, each as the provider words it (PROVIDERS.md). */
export const DEMO_BEHAVIOUR_REPLIES = {
  quota_microsoft: {
    at: "data",
    code: 554,
    message:
      "5.2.0 STOREDRV.Submission.Exception:SubmissionQuotaExceededException; Failed to process " +
      "message due to a permanent exception with message Cannot submit message.",
  },
  quota_gmail: {
    at: "mail",
    code: 550,
    message:
      "5.4.5 Daily user sending limit exceeded. For more information on Gmail's sending limits " +
      "go to https://support.google.com/a/answer/166852",
  },
  mailbox_full: {
    at: "data",
    code: 554,
    message:
      "5.2.2 mailbox full; STOREDRV.Submission.Exception:QuotaExceededException." +
      "MapiExceptionShutoffQuotaExceeded; Failed to process message due to a permanent exception",
  },
  try_later_gmail: { at: "mail", code: 421, message: "4.7.0 Try again later, closing connection." },
} as const;

/**
 * Connections that drop instead of answering, as a network or a provider's front end sometimes
 * does: before the reply to MAIL FROM (nothing was handed over), or after the last byte of DATA,
 * the message accepted and stored but the reply lost, so the client cannot know it arrived.
 */
export const DEMO_DROPS = { drop_before_mail: "mail", drop_after_data: "data" } as const;

export type DemoBehaviour = keyof typeof DEMO_BEHAVIOUR_REPLIES | keyof typeof DEMO_DROPS;

/**
 * Demo mode: a mailbox whose address carries one of these tags (`name+limit@example.com`)
 * answers as a provider does at that limit, so that anyone trying Mailwarden can see what
 * their users will see (the demo provider's sign-in page says so).
 */
export const DEMO_ADDRESS_TAGS = {
  limit: "quota_microsoft",
  full: "mailbox_full",
  busy: "try_later_gmail",
  drop: "drop_after_data",
} as const satisfies Record<string, DemoBehaviour>;

/** The behaviour a demo address's tag asks for, if any (the last `+tag` of the local part). */
export function behaviourOfTaggedAddress(address: string): DemoBehaviour | null {
  const local = address.toLowerCase().split("@")[0] ?? "";
  const plus = local.lastIndexOf("+");
  if (plus < 0) return null;
  const tag = local.slice(plus + 1);
  return Object.hasOwn(DEMO_ADDRESS_TAGS, tag)
    ? DEMO_ADDRESS_TAGS[tag as keyof typeof DEMO_ADDRESS_TAGS]
    : null;
}

export const CONCURRENT_LIMIT_REPLY = "4.3.2 Concurrent connections limit exceeded";

export type DemoSmtpStats = {
  /** Connections open now, authenticated or not. */
  open: number;
  /** The most authenticated sessions each mailbox held at once. */
  peakByMailbox: Record<string, number>;
  /** AUTHs answered 432 because the mailbox already held its maximum. */
  refusedConcurrent: number;
  acceptedByMailbox: Record<string, number>;
  /** Message-ID header → how many times a message carrying it was accepted. */
  acceptedMessageIds: Map<string, number>;
  /** Messages accepted beyond `messagesPerWindow` in a window. */
  overRate: number;
  firstAcceptedAt: number | null;
  lastAcceptedAt: number | null;
};

export type DemoSmtp = { port: number; stats(): DemoSmtpStats; close(): Promise<void> };

export const MAX_MESSAGE_BYTES = 25 * 1024 * 1024;

// Gmail's answer to a bad or under-scoped token: a 334 challenge carrying this JSON, then 535.
const GMAIL_STYLE_FAILURE = { status: "401", schemes: "bearer", scope: DEMO_MAIL_SCOPE };

export async function startDemoSmtp(opts: DemoSmtpOptions): Promise<DemoSmtp> {
  const host = opts.host ?? "127.0.0.1";
  assertLoopback(host);
  const implicit = (opts.mode ?? "implicit") === "implicit";
  const counters = new Counters(opts.limits ?? {});

  const server = new SMTPServer({
    secure: implicit,
    key: opts.tls.key,
    cert: opts.tls.cert,
    minVersion: "TLSv1.2",
    name: "localhost",
    banner: "Mailwarden demo SMTP (local testing only)",
    authMethods: ["XOAUTH2"],
    allowInsecureAuth: false,
    size: MAX_MESSAGE_BYTES,
    disableReverseLookup: true,
    logger: false,
    onConnect: (_session, callback) => {
      counters.open += 1;
      callback();
    },
    onClose: (session) => {
      counters.open -= 1;
      counters.release(session.id);
    },
    onAuth: (auth, session, callback) => {
      authenticate(opts, auth)
        .then((response) => {
          if (response.user) counters.claim(session.id, String(response.user));
          return response;
        })
        .then(
          (response) => callback(null, response),
          (error: Error) => callback(error),
        );
    },
    onMailFrom: (address, session, callback) => {
      const refused = checkSender(address.address, session);
      if (refused) return callback(refused);
      const behaviour = opts.behaviour?.(sessionUser(session)) ?? null;
      if (dropsAt(behaviour, "mail")) return dropConnection(server, session);
      callback(behaviourReply(behaviour, "mail"));
    },
    onData: (stream, session, callback) => {
      const behaviour = opts.behaviour?.(sessionUser(session)) ?? null;
      storeMessage(opts.dataDir, stream, session, () => behaviourReply(behaviour, "data")).then(
        (messageId) => {
          counters.accepted(sessionUser(session), messageId);
          if (dropsAt(behaviour, "data")) return dropConnection(server, session);
          callback(null, "Message accepted by the demo server");
        },
        (error: Error) => callback(error),
      );
    },
  });

  const port = await new Promise<number>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port, host, () => {
      server.off("error", reject);
      resolve((server.server.address() as AddressInfo).port);
    });
  });
  // Connection-level errors (a client speaking plaintext to the TLS port) are expected here.
  server.on("error", () => {});

  return {
    port,
    stats: () => counters.snapshot(),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

// Per-mailbox session counts, acceptance counts and the sliding rate window.
class Counters {
  open = 0;
  refusedConcurrent = 0;
  overRate = 0;
  firstAcceptedAt: number | null = null;
  lastAcceptedAt: number | null = null;
  private readonly sessions = new Map<string, string>();
  private readonly openByMailbox = new Map<string, number>();
  private readonly peakByMailbox = new Map<string, number>();
  private readonly acceptedByMailbox = new Map<string, number>();
  private readonly acceptedMessageIds = new Map<string, number>();
  private readonly recent = new Map<string, number[]>();

  constructor(private readonly limits: DemoSmtpLimits) {}

  claim(sessionId: string, mailbox: string): void {
    const open = this.openByMailbox.get(mailbox) ?? 0;
    const max = this.limits.maxConnectionsPerMailbox;
    if (max !== undefined && open >= max) {
      this.refusedConcurrent += 1;
      throw smtpError(432, CONCURRENT_LIMIT_REPLY);
    }
    this.sessions.set(sessionId, mailbox);
    this.openByMailbox.set(mailbox, open + 1);
    this.peakByMailbox.set(mailbox, Math.max(open + 1, this.peakByMailbox.get(mailbox) ?? 0));
  }

  release(sessionId: string): void {
    const mailbox = this.sessions.get(sessionId);
    if (mailbox === undefined) return;
    this.sessions.delete(sessionId);
    this.openByMailbox.set(mailbox, (this.openByMailbox.get(mailbox) ?? 1) - 1);
  }

  accepted(mailbox: string, messageId: string | null): void {
    const now = Date.now();
    this.firstAcceptedAt ??= now;
    this.lastAcceptedAt = now;
    this.acceptedByMailbox.set(mailbox, (this.acceptedByMailbox.get(mailbox) ?? 0) + 1);
    if (messageId) {
      this.acceptedMessageIds.set(messageId, (this.acceptedMessageIds.get(messageId) ?? 0) + 1);
    }
    const { messagesPerWindow, windowMs } = this.limits;
    if (messagesPerWindow === undefined || windowMs === undefined) return;
    const times = this.recent.get(mailbox) ?? [];
    let expired = 0;
    while (expired < times.length && (times[expired] ?? now) <= now - windowMs) expired += 1;
    times.splice(0, expired);
    if (times.length >= messagesPerWindow) this.overRate += 1;
    times.push(now);
    this.recent.set(mailbox, times);
  }

  snapshot(): DemoSmtpStats {
    return {
      open: this.open,
      peakByMailbox: Object.fromEntries(this.peakByMailbox),
      refusedConcurrent: this.refusedConcurrent,
      acceptedByMailbox: Object.fromEntries(this.acceptedByMailbox),
      acceptedMessageIds: new Map(this.acceptedMessageIds),
      overRate: this.overRate,
      firstAcceptedAt: this.firstAcceptedAt,
      lastAcceptedAt: this.lastAcceptedAt,
    };
  }
}

function sessionUser(session: SMTPServerSession): string {
  return typeof session.user === "string" ? session.user : "";
}

function behaviourReply(behaviour: DemoBehaviour | null, at: "mail" | "data"): Error | null {
  if (!behaviour || Object.hasOwn(DEMO_DROPS, behaviour)) return null;
  const reply = DEMO_BEHAVIOUR_REPLIES[behaviour as keyof typeof DEMO_BEHAVIOUR_REPLIES];
  return reply.at === at ? smtpError(reply.code, reply.message) : null;
}

function dropsAt(behaviour: DemoBehaviour | null, at: "mail" | "data"): boolean {
  return !!behaviour && DEMO_DROPS[behaviour as keyof typeof DEMO_DROPS] === at;
}

/** Closes the session's connection without a reply (the command's callback is never called). */
function dropConnection(server: SMTPServer, session: SMTPServerSession): void {
  for (const connection of server.connections) {
    if (connection.id === session.id) connection.close();
  }
}

function smtpError(code: number, message: string): Error {
  return Object.assign(new Error(message), { responseCode: code });
}

async function authenticate(
  opts: DemoSmtpOptions,
  auth: SMTPServerAuthentication,
): Promise<SMTPServerAuthenticationResponse> {
  const username = (auth.username ?? "").toLowerCase();
  const token = auth.accessToken ?? "";
  const override = await opts.authOverride?.({ username, token });
  if (override) throw smtpError(override.code, override.message);

  let info: Introspection;
  try {
    info = await opts.introspect(token);
  } catch {
    throw smtpError(454, "4.7.0 Temporary authentication failure, try again later");
  }
  const subject = (info.email ?? info.sub ?? "").toLowerCase();
  const scopes = new Set((info.scope ?? "").split(" "));
  if (!info.active || !scopes.has(DEMO_MAIL_SCOPE) || !username || subject !== username) {
    return { data: GMAIL_STYLE_FAILURE };
  }
  return { user: username };
}

function checkSender(address: string, session: SMTPServerSession): Error | null {
  const user = sessionUser(session);
  if (address.toLowerCase() === user) return null;
  return smtpError(
    553,
    `5.7.1 Sender address <${address}> is not the authenticated user <${user}>; ` +
      "the demo mailbox only sends as itself",
  );
}

/** Stores an accepted message; resolves to its Message-ID header, if it has one. */
async function storeMessage(
  dataDir: string,
  stream: SMTPServerDataStream,
  session: SMTPServerSession,
  refusal: () => Error | null,
): Promise<string | null> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  if (stream.sizeExceeded) {
    throw smtpError(552, "5.3.4 Message exceeds the demo server's 25 MB limit");
  }
  const refused = refusal();
  if (refused) throw refused;
  const receivedAt = new Date();
  // Time first so file names sort by arrival; the uuid keeps concurrent messages apart.
  const id = `${receivedAt.getTime().toString().padStart(15, "0")}-${randomUUID()}`;
  const stored: StoredMessage = {
    id,
    receivedAt: receivedAt.toISOString(),
    authUser: sessionUser(session),
    envelope: {
      from: session.envelope.mailFrom ? session.envelope.mailFrom.address : "",
      to: session.envelope.rcptTo.map((rcpt) => rcpt.address),
    },
    raw: Buffer.concat(chunks).toString("utf8"),
  };
  await writePrivateFile(path.join(demoInboxDir(dataDir), `${id}.json`), JSON.stringify(stored));
  return headerMessageId(stored.raw);
}

// The Message-ID of the header block; the pattern has no nested repetition (linear time).
function headerMessageId(raw: string): string | null {
  const end = raw.indexOf("\r\n\r\n");
  const headers = end === -1 ? raw : raw.slice(0, end);
  return /^message-id:[ \t]*(<[^>\r\n]*>)/im.exec(headers)?.[1] ?? null;
}
