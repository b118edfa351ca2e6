import "server-only";
import http from "node:http";
import https from "node:https";
import type { LookupFunction } from "node:net";
import type { ResolvedTarget } from "./address";

// One POST to a webhook endpoint, to the address lib/webhooks/address.ts checked: the request
// keeps the URL's host name (Host header, TLS SNI and certificate check) but its `lookup`
// answers only that address, so no second DNS answer is ever used. Redirects are not followed
// (a 3xx is a failed attempt, as the spec advises), the whole exchange has a deadline and the
// response is read up to a cap, of which a short excerpt is kept.

export const WEBHOOK_TIMEOUT_MS = 10_000;
const MAX_RESPONSE_BYTES = 64 * 1024;
const EXCERPT_CHARS = 300;

export type PostResult =
  | {
      kind: "answered";
      statusCode: number;
      excerpt: string;
      retryAfterSeconds: number | null;
    }
  | { kind: "error"; error: "timeout" | "network" | "too_large"; detail: string };

function retryAfterOf(value: string | string[] | undefined): number | null {
  const text = Array.isArray(value) ? value[0] : value;
  if (!text) return null;
  if (/^\d+$/.test(text.trim())) return Number(text.trim());
  const at = Date.parse(text);
  return Number.isNaN(at) ? null : Math.max(0, Math.ceil((at - Date.now()) / 1000));
}

export function postWebhook(
  target: ResolvedTarget,
  headers: Record<string, string>,
  body: string,
  { timeoutMs = WEBHOOK_TIMEOUT_MS } = {},
): Promise<PostResult> {
  const pinned: LookupFunction = (_hostname, options, callback) => {
    if (options.all) {
      callback(null, [{ address: target.address, family: target.family }]);
    } else {
      (callback as (err: null, address: string, family: number) => void)(
        null,
        target.address,
        target.family,
      );
    }
  };
  const client = target.url.protocol === "https:" ? https : http;
  return new Promise((resolve) => {
    let settled = false;
    const finish = (result: PostResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(result);
    };
    const request = client.request(
      target.url,
      {
        method: "POST",
        lookup: pinned,
        agent: false,
        headers: {
          "content-type": "application/json",
          "content-length": String(Buffer.byteLength(body)),
          "user-agent": "Mailwarden-Webhooks/1",
          ...headers,
        },
      },
      (response) => {
        const chunks: Buffer[] = [];
        let size = 0;
        response.on("data", (chunk: Buffer) => {
          size += chunk.length;
          if (size > MAX_RESPONSE_BYTES) {
            // Enough to judge the answer: the status counts, the rest is not read.
            response.destroy();
            done();
            return;
          }
          chunks.push(chunk);
        });
        const done = () =>
          finish({
            kind: "answered",
            statusCode: response.statusCode ?? 0,
            excerpt: Buffer.concat(chunks)
              .toString("utf8")
              .replace(/[\p{Cc}\s]+/gu, " ")
              .trim()
              .slice(0, EXCERPT_CHARS),
            retryAfterSeconds: retryAfterOf(response.headers["retry-after"]),
          });
        response.on("end", done);
        response.on("error", done);
      },
    );
    const timer = setTimeout(() => {
      request.destroy();
      finish({
        kind: "error",
        error: "timeout",
        detail: `No answer within ${timeoutMs / 1000} s.`,
      });
    }, timeoutMs);
    request.on("error", (error: NodeJS.ErrnoException) => {
      finish({
        kind: "error",
        error: "network",
        detail: error.code
          ? `${error.code}: could not reach the endpoint.`
          : "Could not reach the endpoint.",
      });
    });
    request.end(body);
  });
}
