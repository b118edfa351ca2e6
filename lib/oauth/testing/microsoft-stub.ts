// Test-only: Microsoft's token endpoint, answering exactly the error bodies Microsoft documents
// (https://learn.microsoft.com/entra/identity-platform/reference-error-codes), or failing.
import http from "node:http";
import type { AddressInfo } from "node:net";
import { buildMicrosoftProvider, type MailProvider } from "../providers";

export type StubAnswer = { status: number; body: unknown } | "hang";

export type MicrosoftStub = {
  provider: MailProvider;
  /** Form bodies received, newest last. */
  requests: URLSearchParams[];
  answer: StubAnswer;
  close(): Promise<void>;
};

const DESCRIPTIONS: Record<number, string> = {
  65001:
    "AADSTS65001: The user or administrator has not consented to use the application with ID " +
    "'00000000-0000-0000-0000-000000000001' named 'Mailwarden'. Send an interactive authorization " +
    "request for this user and resource.",
  50076:
    "AADSTS50076: Due to a configuration change made by your administrator, or because you moved " +
    "to a new location, you must use multi-factor authentication to access " +
    "'00000002-0000-0ff1-ce00-000000000000'.",
  700082:
    "AADSTS700082: The refresh token has expired due to inactivity. The token was issued on " +
    "2025-01-02T10:00:00.0000000Z and was inactive for 90.00:00:00.",
  50173:
    "AADSTS50173: The provided grant has expired due to it being revoked, a fresh auth token is " +
    "needed. The user might have changed or reset their password. The grant was issued on " +
    "'2025-01-02T10:00:00.0000000Z' and the TokensValidFrom date (before which tokens are not " +
    "valid) for this user is '2025-03-04T09:00:00.0000000Z'.",
};

/** The body Microsoft's v2.0 token endpoint sends with HTTP 400 for an AADSTS error. */
export function microsoftErrorBody(code: number, error: "invalid_grant" | "interaction_required") {
  const trace = "0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9";
  const correlation = "f9e8d7c6-b5a4-9382-7160-5f4e3d2c1b0a";
  const timestamp = "2025-06-01 12:00:00Z";
  return {
    error,
    error_description: `${DESCRIPTIONS[code]} Trace ID: ${trace} Correlation ID: ${correlation} Timestamp: ${timestamp}`,
    error_codes: [code],
    timestamp,
    trace_id: trace,
    correlation_id: correlation,
    error_uri: `https://login.microsoftonline.com/error?code=${code}`,
  };
}

export async function startMicrosoftStub(
  opts: { timeoutMs?: number } = {},
): Promise<MicrosoftStub> {
  const sockets = new Set<import("node:net").Socket>();
  const server = http.createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    stub.requests.push(new URLSearchParams(Buffer.concat(chunks).toString()));
    const answer = stub.answer;
    if (answer === "hang") return;
    res.writeHead(answer.status, { "content-type": "application/json; charset=utf-8" });
    res.end(JSON.stringify(answer.body));
  });
  server.on("connection", (socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const provider: MailProvider = {
    ...buildMicrosoftProvider({
      clientId: "00000000-0000-0000-0000-000000000001",
      clientSecret: "stub-secret",
      tenant: "organizations",
    }),
    tokenEndpoint: `${base}/organizations/oauth2/v2.0/token`,
    requestTimeoutMs: opts.timeoutMs ?? 400,
  };
  const stub: MicrosoftStub = {
    provider,
    requests: [],
    answer: { status: 500, body: { error: "server_error" } },
    close: () =>
      new Promise((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
  return stub;
}
