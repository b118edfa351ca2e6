// Test only: a real local HTTP server that receives webhooks, keeps each request's headers and
// exact body, and answers what the test tells it to.
import http from "node:http";
import type { AddressInfo } from "node:net";

export type Received = {
  path: string;
  headers: http.IncomingHttpHeaders;
  body: string;
  receivedAt: number;
  /** When the exchange ended (answered, or the caller gave up on a hanging one). */
  closedAt?: number;
};

export type Answer =
  | {
      status: number;
      body?: string;
      headers?: Record<string, string>;
      /** Answered only once this settles (the request has arrived meanwhile). */
      after?: Promise<unknown>;
    }
  | "hang";

export type Receiver = {
  url: string;
  port: number;
  received: Received[];
  /** The next answers, in order; when empty, 200 "ok". */
  answers: Answer[];
  /** Requests not ended yet, and the most there have been at once. */
  open(): number;
  maxOpen(): number;
  close(): Promise<void>;
};

export async function startReceiver(): Promise<Receiver> {
  const received: Received[] = [];
  const answers: Answer[] = [];
  let open = 0;
  let maxOpen = 0;
  const server = http.createServer((req, res) => {
    open++;
    maxOpen = Math.max(maxOpen, open);
    res.on("close", () => {
      open--;
    });
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const request: Received = {
        path: req.url ?? "",
        headers: req.headers,
        body: Buffer.concat(chunks).toString("utf8"),
        receivedAt: Date.now(),
      };
      received.push(request);
      res.on("close", () => {
        request.closedAt = Date.now();
      });
      const answer = answers.shift() ?? { status: 200, body: "ok" };
      if (answer === "hang") return;
      void Promise.resolve(answer.after).then(() => {
        res.writeHead(answer.status, { "content-type": "text/plain", ...answer.headers });
        res.end(answer.body ?? "");
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hooks`,
    port,
    received,
    answers,
    open: () => open,
    maxOpen: () => maxOpen,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
