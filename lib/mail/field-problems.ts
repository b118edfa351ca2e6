import type * as z from "zod";
import type { FieldProblem } from "./problem";

// How the send request's validator names what is wrong: one problem per schema issue, at a
// JSON-pointer-style field, and never more of them than an answer should carry.

// Reporting is bounded too: a body of a million unknown keys must not yield a 50 MB answer.
const MAX_PROBLEMS = 100;
const MAX_FIELD_NAME_LENGTH = 64;

export const UNKNOWN_FIELD_HINTS = new Map<string, string>([
  ["from", "is not accepted: messages are always sent from the mailbox"],
  ["sender", "is not accepted: messages are always sent from the mailbox"],
  ["headers", "is not accepted: raw headers cannot be set"],
  ["envelope", "is not accepted: the SMTP envelope is built from to, cc and bcc"],
  ["attachments", "is not accepted: attachments are not supported"],
  ["__proto__", "is not accepted"],
]);

export function toFieldProblems(issue: z.core.$ZodIssue): FieldProblem[] {
  if (issue.code === "unrecognized_keys") {
    return issue.keys
      .filter((key) => key !== "__proto__")
      .map((key) => ({
        field: fieldName([...issue.path, key]),
        message: UNKNOWN_FIELD_HINTS.get(key) ?? "is not a field this API accepts",
      }));
  }
  return [{ field: fieldName(issue.path), message: issue.message }];
}

/** JSON-pointer-style path without the leading slash, escaped as RFC 6901 says. */
function fieldName(path: readonly PropertyKey[]): string {
  if (path.length === 0) return "body";
  return path
    .map((segment) => {
      const text = String(segment).replaceAll("~", "~0").replaceAll("/", "~1");
      // Unknown keys are the caller's text; a bounded echo is enough to find them.
      return text.length > MAX_FIELD_NAME_LENGTH
        ? `${text.slice(0, MAX_FIELD_NAME_LENGTH)}…`
        : text;
    })
    .join("/");
}

export function capProblems(problems: FieldProblem[]): FieldProblem[] {
  if (problems.length <= MAX_PROBLEMS) return problems;
  return [
    ...problems.slice(0, MAX_PROBLEMS),
    { field: "body", message: `${problems.length - MAX_PROBLEMS} more problems not listed` },
  ];
}
