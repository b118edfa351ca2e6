// RFC 9457 problem details. Every error the send route (and anything else speaking HTTP
// for the mail domain) returns goes through here, so the shape cannot drift between routes.

/** One bad input field: `field` is a JSON-pointer-like path ("to/0", "subject"). */
export type FieldProblem = { field: string; message: string };

export type ProblemDetails = {
  type: string;
  title: string;
  status: number;
  detail: string;
  errors: FieldProblem[];
  [extension: string]: unknown;
};

export type ProblemExtra = {
  type?: string;
  detail?: string;
  instance?: string;
  [extension: string]: unknown;
};

const PROBLEM_BASE = "https://mailwarden.dev/problems/";

/**
 * Every problem type the API answers with, in one registry under one base URL. Stable: clients
 * branch on these, never on `title` or `detail`.
 */
export const PROBLEM_TYPES = {
  invalidMessage: `${PROBLEM_BASE}invalid-message`,
  messageTooLarge: `${PROBLEM_BASE}message-too-large`,
  unsupportedMediaType: `${PROBLEM_BASE}unsupported-media-type`,
  unauthorized: `${PROBLEM_BASE}unauthorized`,
  forbidden: `${PROBLEM_BASE}forbidden`,
  mailboxNotFound: `${PROBLEM_BASE}mailbox-not-found`,
  mailboxUnavailable: `${PROBLEM_BASE}mailbox-unavailable`,
  idempotencyMismatch: `${PROBLEM_BASE}idempotency-key-reused`,
  idempotencyInProgress: `${PROBLEM_BASE}idempotency-key-in-progress`,
  invalidIdempotencyKey: `${PROBLEM_BASE}invalid-idempotency-key`,
  sendingPaused: `${PROBLEM_BASE}sending-paused`,
  rateLimited: `${PROBLEM_BASE}rate-limited`,
  temporarilyUnavailable: `${PROBLEM_BASE}temporarily-unavailable`,
  providerFailed: `${PROBLEM_BASE}provider-failed`,
  replayedFailure: `${PROBLEM_BASE}replayed-failure`,
  messageNotFound: `${PROBLEM_BASE}message-not-found`,
} as const;

export function problemJson(
  status: number,
  title: string,
  problems: readonly FieldProblem[] = [],
  extra: ProblemExtra = {},
): ProblemDetails {
  const { type, detail, ...extensions } = extra;
  // Core members are written last so an extension can never masquerade as one of them.
  return {
    ...extensions,
    type: type ?? "about:blank",
    title,
    status,
    detail: detail ?? describeProblems(title, problems),
    errors: problems.map(({ field, message }) => ({ field, message })),
  };
}

export function problemResponse(
  status: number,
  title: string,
  problems: readonly FieldProblem[] = [],
  extra: ProblemExtra = {},
  headers: Record<string, string> = {},
): Response {
  return new Response(JSON.stringify(problemJson(status, title, problems, extra)), {
    status,
    headers: {
      ...headers,
      "content-type": "application/problem+json",
      // Error bodies can describe the caller's input; no shared cache should keep them.
      "cache-control": "no-store",
    },
  });
}

function describeProblems(title: string, problems: readonly FieldProblem[]): string {
  if (problems.length === 0) return title;
  const fields = [...new Set(problems.map((problem) => problem.field))];
  const noun = fields.length === 1 ? "field needs" : "fields need";
  return `${fields.length} ${noun} attention: ${fields.join(", ")}.`;
}
