import "server-only";
import type { DbOrTx } from "@/db";
import {
  type ActivityCursor,
  type ActivityRow,
  listActivity,
  resolveTargetLabels,
} from "@/db/queries/activity";
import type { ActivityQuery } from "./activity-filter";
import { actionLabel } from "./events";

export const ACTIVITY_PAGE_SIZE = 50;

export type ActivityEntry = ActivityRow & {
  actionLabel: string;
  who: string;
  target: string | null;
};

const TARGET_KIND: Record<string, string> = {
  mailbox: "Mailbox",
  user: "Member",
  api_key: "API key",
  invitation: "Invitation",
  organization: "Organisation",
  message: "Message",
  route: "Page",
  permission: "Permission",
  switch: "Switch",
};

/**
 * A target in words: the resolved label when the organisation still has it, else its kind. An
 * invitation without an id (refused: no row was made) is named by the address in the event's
 * `personal` fields (`namedEmail`), a pseudonym once erased; one from before that change has the
 * address as its id.
 */
export function describeTarget(
  labels: Map<string, string>,
  type: string | null,
  id: string | null,
  namedEmail: unknown = null,
): string | null {
  if (!type) return null;
  const kind = TARGET_KIND[type] ?? type;
  const label = labels.get(`${type}:${id}`);
  if (label) return `${kind} ${label}`;
  // Routes, permissions and switches are named by their id already; uuids are not words.
  if (type === "route" || type === "permission" || type === "switch") return `${kind} ${id}`;
  if (type === "invitation" && id === null && typeof namedEmail === "string") {
    return `${kind} ${namedEmail}`;
  }
  return type === "invitation" && id?.includes("@") ? `${kind} ${id}` : `${kind} (no longer here)`;
}

/**
 * One page of the activity log in human words: action labels from the typed list, target
 * labels resolved in one batched query per kind, scoped to the organisation.
 */
export async function loadActivityPage({
  db,
  chain,
  query,
  limit = query.size ?? ACTIVITY_PAGE_SIZE,
}: {
  db: DbOrTx;
  chain: string;
  query: ActivityQuery;
  limit?: number;
}) {
  const page = await listActivity({
    db,
    chain,
    filter: query.filter,
    cursor: query.cursor,
    direction: query.direction,
    limit,
  });
  const labels = await resolveTargetLabels({
    db,
    orgId: chain === "" ? null : chain,
    refs: page.rows.map((r) => ({ type: r.targetType, id: r.targetId })),
  });
  const entries: ActivityEntry[] = page.rows.map((r) => ({
    ...r,
    actionLabel: actionLabel(r.action),
    who: r.actorLabel ?? (r.actorType === "system" ? "System" : r.actorType),
    target: describeTarget(labels, r.targetType, r.targetId, r.namedEmail),
  }));
  const firstRow = page.rows[0];
  const lastRow = page.rows[page.rows.length - 1];
  const cursorOf = (r: ActivityRow | undefined): ActivityCursor | null =>
    r ? { at: r.at, id: r.id } : null;
  // Towards the direction read: on from the last row, or from where a text scan stopped when
  // its window held fewer matches than a page. The other way: back from the first row.
  const onward = (edge: ActivityRow | undefined) =>
    page.rows.length === limit ? cursorOf(edge) : (page.scannedTo ?? cursorOf(edge));
  const back = (edge: ActivityRow | undefined) => cursorOf(edge) ?? query.cursor ?? null;
  if (query.direction === "older") {
    return {
      entries,
      newer: query.cursor ? back(firstRow) : null,
      older: page.hasMore ? onward(lastRow) : null,
    };
  }
  return {
    entries,
    newer: page.hasMore ? onward(firstRow) : null,
    older: back(lastRow),
  };
}
