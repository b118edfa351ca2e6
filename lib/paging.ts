// Keyset pages of a console list, newest first, with the position in the URL (`after=` for the
// next, older page, `before=` for the previous, newer one). The position is a row's exact time
// and id, so rows that arrive meanwhile do not shift the pages, and page 40 costs what page 1
// does. The cursor comes back from the URL, so it is untrusted: a malformed one shows the first
// page with a message naming the field (never an error page), and a well-formed one from another
// list or organisation is only a position: every query stays scoped by its organisation.

export const PAGE_SIZE = 50;

export type PageCursor = { at: string; id: string };
export type PageRequest = { cursor?: PageCursor; direction: "older" | "newer" };
/** The rows of one page, newest first, and the cursors of the pages either side (null: none). */
export type Page<T> = { rows: T[]; newer: string | null; older: string | null };

export const FIRST_PAGE: PageRequest = { direction: "older" };

// The time as exactTime (db/queries/audit.ts) writes it: microseconds, UTC. Never " BC": no
// listed row is dated before year 1, and PostgreSQL refuses most such years (4713 BC is its
// earliest), which would turn an edited link into an error page.
const TIME = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3})\d{3}Z$/;
// Ids are uuids, or Auth.js user ids; both are text columns, so any such string is a safe value.
const ID = /^[A-Za-z0-9_-]{1,100}$/;
const MAX_CURSOR_LENGTH = 200;

export function encodeCursor(cursor: PageCursor): string {
  return Buffer.from(`${cursor.at}|${cursor.id}`).toString("base64url");
}

/** The position a URL's cursor names, or null when it is not one this module wrote. */
export function decodeCursor(text: string): PageCursor | null {
  if (text.length > MAX_CURSOR_LENGTH || !/^[A-Za-z0-9_-]+$/.test(text)) return null;
  const plain = Buffer.from(text, "base64url").toString("utf8");
  const bar = plain.indexOf("|");
  const at = plain.slice(0, bar);
  const id = plain.slice(bar + 1);
  const time = TIME.exec(at);
  if (bar < 0 || !time?.[1] || !ID.test(id)) return null;
  // A real instant PostgreSQL accepts: no 2026-02-30, no year 0.
  const ms = Date.parse(`${time[1]}Z`);
  if (Number.isNaN(ms) || time[1].startsWith("0000")) return null;
  if (new Date(ms).toISOString() !== `${time[1]}Z`) return null;
  return { at, id };
}

/** The URL parameters of one list's position; a page with two lists names the second's apart. */
export type PageParamNames = { after: string; before: string };
export const PAGE_PARAMS: PageParamNames = { after: "after", before: "before" };

export type ParsedPage = { request: PageRequest; error: string | null };

/** A URL parameter as the pages read it: the first of repeated values, an empty one as none. */
export function pageParam(
  searchParams: Record<string, string | string[] | undefined>,
  name: string,
): string | undefined {
  const value = searchParams[name];
  return (Array.isArray(value) ? value[0] : value) || undefined;
}

/**
 * The page a URL asks for. Anything unreadable falls back to the first page with an error that
 * names the parameter, so a stale or edited link still shows the list.
 */
export function parsePageParams(
  searchParams: Record<string, string | string[] | undefined>,
  names: PageParamNames = PAGE_PARAMS,
): ParsedPage {
  const after = pageParam(searchParams, names.after);
  const before = pageParam(searchParams, names.before);
  if (after && before) {
    return {
      request: FIRST_PAGE,
      error: `${names.after}: give ${names.after} or ${names.before}, not both`,
    };
  }
  const field = after ? names.after : names.before;
  const text = after ?? before;
  if (!text) return { request: FIRST_PAGE, error: null };
  const cursor = decodeCursor(text);
  if (!cursor) return { request: FIRST_PAGE, error: `${field}: is not a page position` };
  return { request: { cursor, direction: after ? "older" : "newer" }, error: null };
}

/**
 * One page from the rows a keyset read returned: up to `limit + 1` rows in the direction read
 * (newest first for `older`, oldest first for `newer`), the extra row saying another page lies
 * that way.
 */
export function shapePage<T>(
  rows: T[],
  request: PageRequest,
  limit: number,
  cursorOf: (row: T) => PageCursor,
): Page<T> {
  const hasMore = rows.length > limit;
  const kept = rows.slice(0, limit);
  const shown = request.direction === "newer" ? kept.reverse() : kept;
  const edge = (row: T | undefined) => (row ? encodeCursor(cursorOf(row)) : null);
  const given = request.cursor ? encodeCursor(request.cursor) : null;
  if (request.direction === "older") {
    return {
      rows: shown,
      newer: given && (edge(shown[0]) ?? given),
      older: hasMore ? edge(shown.at(-1)) : null,
    };
  }
  return {
    rows: shown,
    newer: hasMore ? edge(shown[0]) : null,
    older: edge(shown.at(-1)) ?? given,
  };
}
