import { z } from "zod";
import type { ActivityCursor, ActivityFilter } from "@/db/queries/activity";
import { AUDIT_ACTION_LABELS, AUDIT_ACTIONS } from "./events";

// The activity page's filter lives in the URL. This turns searchParams into a filter, a cursor
// and a view, or into messages naming each bad field; nothing here throws on user input.

const DAY = /^\d{4}-\d{2}-\d{2}$/;
const CURSOR = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z)~(\d{1,18})$/;

const optional = <T extends z.ZodType<string, string>>(schema: T) =>
  z
    .string()
    .trim()
    .transform((v) => (v === "" ? undefined : v))
    .pipe(schema.optional())
    .optional();

const day = optional(
  z
    .string()
    .regex(DAY, { error: "must be a date like 2026-01-31" })
    .refine((v) => !Number.isNaN(Date.parse(`${v}T00:00:00Z`)), { error: "is not a real date" }),
);

const cursor = optional(z.string().regex(CURSOR, { error: "is not a page position" }));

const schema = z
  .strictObject({
    actor: optional(z.string().max(200, { error: "is too long" })),
    action: optional(z.enum(AUDIT_ACTIONS, { error: "is not a known action" })),
    outcome: optional(
      z.enum(["success", "failure", "denied"], { error: "must be success, failure or denied" }),
    ),
    target: optional(
      z
        .string()
        .max(300, { error: "is too long" })
        .regex(/^[a-z_]+:.+$/, { error: "must look like mailbox:<id>" }),
    ),
    from: day,
    to: day,
    q: optional(z.string().max(100, { error: "must be at most 100 characters" })),
    after: cursor,
    before: cursor,
    view: optional(z.enum(["system"], { error: "must be system or empty" })),
    size: optional(
      z
        .string()
        .regex(/^\d{1,3}$/, { error: "must be a number of rows from 2 to 200" })
        .refine((v) => Number(v) >= 2 && Number(v) <= 200, {
          error: "must be a number of rows from 2 to 200",
        }),
    ),
  })
  .refine((v) => !(v.after && v.before), {
    error: "give after or before, not both",
    path: ["after"],
  })
  .refine((v) => !(v.from && v.to && v.from > v.to), {
    error: "must not be after to",
    path: ["from"],
  });

export type ActivityQuery = {
  filter: ActivityFilter;
  cursor?: ActivityCursor;
  direction: "older" | "newer";
  view: "organization" | "system";
  /** Rows per page, when the URL asks for other than the default. */
  size?: number;
  /** The filter as URL parameters, without the page position (for links and exports). */
  params: Record<string, string>;
};

export type ActivityQueryResult =
  | { ok: true; query: ActivityQuery }
  | { ok: false; errors: { field: string; message: string }[] };

function parseCursor(text: string | undefined): ActivityCursor | undefined {
  const match = text ? CURSOR.exec(text) : null;
  return match?.[1] && match[2] ? { at: match[1], id: Number(match[2]) } : undefined;
}

export function formatCursor(cursor: ActivityCursor): string {
  return `${cursor.at}~${cursor.id}`;
}

function first(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/** Filter fields the URL may carry; anything else is refused as unknown. */
export const FILTER_FIELDS = [
  "actor",
  "action",
  "outcome",
  "target",
  "from",
  "to",
  "q",
  "view",
] as const;

export function parseActivityQuery(
  searchParams: Record<string, string | string[] | undefined>,
): ActivityQueryResult {
  const input: Record<string, string> = {};
  for (const [key, value] of Object.entries(searchParams)) {
    const v = first(value);
    if (v !== undefined) input[key] = v;
  }
  const parsed = schema.safeParse(input);
  if (!parsed.success) {
    const errors = parsed.error.issues.map((issue) => {
      const field = issue.path.length ? issue.path.join(".") : "filter";
      const message =
        issue.code === "unrecognized_keys"
          ? `unknown parameter ${issue.keys.join(", ")}`
          : issue.message;
      return {
        field: issue.code === "unrecognized_keys" ? issue.keys.join(", ") : field,
        message,
      };
    });
    // One message per field: the first says what is wrong.
    const seen = new Set<string>();
    return { ok: false, errors: errors.filter((e) => !seen.has(e.field) && seen.add(e.field)) };
  }
  const v = parsed.data;
  const filter: ActivityFilter = {};
  if (v.actor) filter.actorId = v.actor;
  if (v.action) filter.action = v.action;
  if (v.outcome) filter.outcome = v.outcome as ActivityFilter["outcome"];
  if (v.target) {
    const colon = v.target.indexOf(":");
    filter.targetType = v.target.slice(0, colon);
    filter.targetId = v.target.slice(colon + 1);
  }
  if (v.from) filter.from = new Date(`${v.from}T00:00:00Z`);
  if (v.to) filter.before = new Date(Date.parse(`${v.to}T00:00:00Z`) + 86_400_000);
  if (v.q) {
    filter.text = v.q;
    const needle = v.q.toLowerCase();
    filter.textActions = Object.entries(AUDIT_ACTION_LABELS)
      .filter(([, label]) => label.toLowerCase().includes(needle))
      .map(([code]) => code);
  }
  const params: Record<string, string> = {};
  for (const field of FILTER_FIELDS) {
    const value = v[field];
    if (value) params[field] = value;
  }
  const before = parseCursor(v.before);
  const after = parseCursor(v.after);
  return {
    ok: true,
    query: {
      filter,
      cursor: before ?? after,
      direction: before ? "newer" : "older",
      view: v.view === "system" ? "system" : "organization",
      ...(v.size ? { size: Number(v.size) } : {}),
      params,
    },
  };
}

/** The filter as a short description for an export's manifest (in the downloaded file). */
export function describeFilter(params: Record<string, string>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(params).filter(([key]) => key !== "view" && key !== "size"),
  );
}

/** Filter fields whose value is typed by hand, so may be anyone's address or name. */
const FREE_TEXT_FIELDS: readonly string[] = ["q", "actor", "target"];

/**
 * The filter as the log may keep it (the `audit.exported` event): an event's metadata is
 * sealed into the chain and neither erased nor exported for a person, so a hand-typed value
 * (a search for "alice@…") is recorded only by its length; a target keeps its type, which
 * the filter's syntax limits to a lowercase word.
 */
export function filterForAudit(filter: Record<string, string>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(filter).map(([key, value]) => {
      if (!FREE_TEXT_FIELDS.includes(key)) return [key, value];
      const colon = key === "target" ? value.indexOf(":") : -1;
      const kept = colon > 0 ? value.slice(0, colon + 1) : "";
      return [key, `${kept}[${value.length - kept.length} characters, not recorded]`];
    }),
  );
}
