import "server-only";
import { asc, desc, type SQL, sql } from "drizzle-orm";
import type { AnyPgColumn } from "drizzle-orm/pg-core";
import { FIRST_PAGE, PAGE_SIZE, type Page, type PageRequest, shapePage } from "@/lib/paging";
import { exactTime } from "./audit";

/** A list's keyset order: a timestamp and a unique id that breaks its ties. */
export type PageKeys = { at: AnyPgColumn; id: AnyPgColumn };

/** The columns each row carries so that its position can become a cursor. */
export function pageKeyColumns(keys: PageKeys) {
  return { pageAt: exactTime(keys.at), pageId: sql<string>`${keys.id}` };
}

type Keyed = { pageAt: string; pageId: string };

/**
 * One keyset page: `read` runs the list's own query (scoped by its organisation) with the
 * position's condition, order and row limit added. Going back to newer rows and finding no
 * more beyond them shows the first page whole, not the few rows that were left above; a
 * position past the last row shows the first page too, never "nothing here" while rows exist.
 */
export async function readKeysetPage<T extends Keyed>({
  keys,
  request,
  limit = PAGE_SIZE,
  read,
}: {
  keys: PageKeys;
  request: PageRequest;
  limit?: number;
  read: (position: SQL | undefined, order: SQL[], limit: number) => Promise<T[]>;
}): Promise<Page<Omit<T, keyof Keyed>>> {
  const older = request.direction === "older";
  const position = request.cursor
    ? sql`(${keys.at}, ${keys.id}) ${sql.raw(older ? "<" : ">")} (${request.cursor.at}::timestamptz, ${request.cursor.id})`
    : undefined;
  const order = older ? [desc(keys.at), desc(keys.id)] : [asc(keys.at), asc(keys.id)];
  let rows = await read(position, order, limit + 1);
  let asked = request;
  // Back to newer rows with no more beyond them, or on to an older page that is now empty
  // (its rows accepted, revoked or deleted since the link was made): the first page.
  if ((!older && rows.length <= limit) || (request.cursor && rows.length === 0)) {
    asked = FIRST_PAGE;
    rows = await read(undefined, [desc(keys.at), desc(keys.id)], limit + 1);
  }
  const page = shapePage(rows, asked, limit, (r) => ({ at: r.pageAt, id: r.pageId }));
  return { ...page, rows: page.rows.map(({ pageAt: _at, pageId: _id, ...row }) => row) };
}
