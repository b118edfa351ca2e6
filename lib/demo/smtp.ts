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
}) => null | { code: number; message: string };

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
};

export type DemoSmtp = { port: number; close(): Promise<void> };

export const MAX_MESSAGE_BYTES = 25 * 1024 * 1024;

// Gmail's answer to a bad or under-scoped token: a 334 challenge carrying this JSON, then 535.
const GMAIL_STYLE_FAILURE = { status: "401", schemes: "bearer", scope: DEMO_MAIL_SCOPE };

export async function startDemoSmtp(opts: DemoSmtpOptions): Promise<DemoSmtp> {
  const host = opts.host ?? "127.0.0.1";
  assertLoopback(host);
  const implicit = (opts.mode ?? "implicit") === "implicit";

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
    onAuth: (auth, _session, callback) => {
      authenticate(opts, auth).then(
        (response) => callback(null, response),
        (error: Error) => callback(error),
      );
    },
    onMailFrom: (address, session, callback) => {
      callback(checkSender(address.address, session));
    },
    onData: (stream, session, callback) => {
      storeMessage(opts.dataDir, stream, session).then(
        () => callback(null, "Message accepted by the demo server"),
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
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
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
  const override = opts.authOverride?.({ username, token });
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
  const user = typeof session.user === "string" ? session.user : "";
  if (address.toLowerCase() === user) return null;
  return smtpError(
    553,
    `5.7.1 Sender address <${address}> is not the authenticated user <${user}>; ` +
      "the demo mailbox only sends as itself",
  );
}

async function storeMessage(
  dataDir: string,
  stream: SMTPServerDataStream,
  session: SMTPServerSession,
): Promise<void> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  if (stream.sizeExceeded) {
    throw smtpError(552, "5.3.4 Message exceeds the demo server's 25 MB limit");
  }
  const receivedAt = new Date();
  // Time first so file names sort by arrival; the uuid keeps concurrent messages apart.
  const id = `${receivedAt.getTime().toString().padStart(15, "0")}-${randomUUID()}`;
  const stored: StoredMessage = {
    id,
    receivedAt: receivedAt.toISOString(),
    authUser: typeof session.user === "string" ? session.user : "",
    envelope: {
      from: session.envelope.mailFrom ? session.envelope.mailFrom.address : "",
      to: session.envelope.rcptTo.map((rcpt) => rcpt.address),
    },
    raw: Buffer.concat(chunks).toString("utf8"),
  };
  await writePrivateFile(path.join(demoInboxDir(dataDir), `${id}.json`), JSON.stringify(stored));
}
