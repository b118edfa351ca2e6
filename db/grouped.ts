import "server-only";
import { type SQL, sql } from "drizzle-orm";
import type { PgColumn } from "drizzle-orm/pg-core";
import { type DbOrTx, sqlState } from "@/db";

// Group commit for the send path's two durable writes (the `sending` row before SMTP, the
// outcome after): the writes of one kind and one organisation that arrive in the same turn of
// the event loop, or while a statement of theirs is on its way, go together as one statement —
// one round trip, one commit and one execution for all of them. Nothing waits for a timer: a
// write that finds no other goes alone, as the statement it always was, one turn later. A group
// whose statement PostgreSQL refused (one row breaking a constraint fails them all, a deadlock,
// a cancelled statement) is tried again one write at a time, so a write fails only for its own
// reason; after a lost connection the statement may have committed, so its writes fail as a
// lone write would.
// Within a transaction nothing is grouped. A grouped statement locks several rows of its
// organisation at once: a transaction that locks many of them (erasure) retries when PostgreSQL
// ends it as a deadlock's victim (`retryingDeadlocks` in db/index.ts).
//
// Each kind keeps at most one statement on its way per organisation and database handle: an
// organisation's groups of one kind commit one after the other, in the order they arrived.
// bench/README.md ("Send throughput") has the figures.

type Waiting<I, R> = { item: I; resolve: (result: R) => void; reject: (error: unknown) => void };

export type GroupedWrite<I, R> = {
  /** Writes are grouped only with writes of the same group (an organisation's own). */
  groupOf: (item: I) => string;
  /** The write alone: its usual statement (also the fallback of a failed group). */
  one: (db: DbOrTx, item: I) => Promise<R>;
  /** The writes as one statement; answers one result per item, in their order. */
  many: (db: DbOrTx, items: I[]) => Promise<R[]>;
};

/** More writes than this wait for the next group. */
const MAX_GROUP = 64;

type Queue = { waiting: Waiting<unknown, unknown>[] };
// Per database handle and kind, the queue of each group that has a statement on its way.
const queues = new WeakMap<object, Map<object, Map<string, Queue>>>();

/**
 * Writes `item` with the others of its kind and group that arrive while a statement of theirs
 * is on its way. Groups are an organisation's own: a statement that waits (on a row lock held
 * by that organisation's erasure, say) holds up only its own organisation's sends.
 */
export function writeGrouped<I, R>(db: DbOrTx, kind: GroupedWrite<I, R>, item: I): Promise<R> {
  if ("rollback" in db) return kind.one(db, item);
  let kinds = queues.get(db);
  if (!kinds) {
    kinds = new Map();
    queues.set(db, kinds);
  }
  let groups = kinds.get(kind);
  if (!groups) {
    groups = new Map();
    kinds.set(kind, groups);
  }
  const group = kind.groupOf(item);
  const queue = groups.get(group);
  const promise = new Promise<R>((resolve, reject) => {
    const waiting = { item, resolve, reject } as Waiting<unknown, unknown>;
    if (queue) queue.waiting.push(waiting);
    else {
      const fresh = { waiting: [waiting] };
      groups.set(group, fresh);
      // From the next turn of the event loop: the writes of this turn go together.
      setImmediate(
        () =>
          void fly(db, kind as GroupedWrite<unknown, unknown>, fresh, () => groups.delete(group)),
      );
    }
  });
  return promise;
}

async function fly(
  db: DbOrTx,
  kind: GroupedWrite<unknown, unknown>,
  queue: Queue,
  done: () => void,
) {
  while (queue.waiting.length > 0) {
    const group = queue.waiting.splice(0, MAX_GROUP);
    const items = group.map((w) => w.item);
    if (group.length > 1 && (await settle(group, () => kind.many(db, items), isUnsure))) {
      continue;
    }
    // Alone, or after its statement was refused: one write's own problem must not fail the others.
    await Promise.all(
      group.map((w) =>
        settle(
          [w],
          async () => [await kind.one(db, w.item)],
          () => true,
        ),
      ),
    );
  }
  done();
}

/**
 * Whether a group's statement may have committed after all: when PostgreSQL never answered (a
 * lost connection: no SQLSTATE, or class 08) or ended the session itself (57P01–57P05, which
 * can come after a commit). Then its writes are not tried again, as a lone write's would not
 * be. Any other answer from PostgreSQL (a broken constraint, a deadlock, a cancelled statement)
 * means the statement rolled back, and each write is tried alone.
 */
function isUnsure(error: unknown): boolean {
  const state = sqlState(error);
  return state === null || state.startsWith("08") || state.startsWith("57P0");
}

/** Answers each waiting write with its result; on an error, rejects them or says false. */
async function settle(
  group: Waiting<unknown, unknown>[],
  run: () => Promise<unknown[]>,
  rejectOn: (error: unknown) => boolean,
): Promise<boolean> {
  try {
    const results = await run();
    for (const [i, w] of group.entries()) w.resolve(results[i]);
    return true;
  } catch (error) {
    if (!rejectOn(error)) return false;
    for (const w of group) w.reject(error);
    return true;
  }
}

/**
 * Rows as one JSON parameter, for a grouped statement to read with `from json_to_recordset(…)`:
 * each field is a column (its value encoded as the column encodes it and cast back to its type)
 * or an SQL type, so one prepared text serves any number of rows.
 */
export function recordset<K extends string>(fields: Record<K, PgColumn | string>, alias: string) {
  const keys = Object.keys(fields) as K[];
  const typeOf = (k: K) => {
    const field = fields[k];
    return typeof field === "string" ? field : field.getSQLType();
  };
  return {
    /** `json_to_recordset($placeholder::json) as <alias>(…)`, every field as text. */
    from: (placeholder: string): SQL =>
      sql`json_to_recordset(${sql.placeholder(placeholder)}::json) as ${sql.identifier(alias)}(${sql.join(
        keys.map((k) => sql`${sql.identifier(k)} text`),
        sql`, `,
      )})`,
    /** One field, as its type. */
    field: (k: K): SQL => sql`${sql.identifier(alias)}.${sql.identifier(k)}::${sql.raw(typeOf(k))}`,
    /** The rows' values, for the placeholder. */
    encode: (rows: Array<Record<K, unknown>>): string =>
      JSON.stringify(
        rows.map((row) =>
          Object.fromEntries(
            keys.map((k) => {
              const field = fields[k];
              const value = row[k] ?? null;
              const driven =
                value === null || typeof field === "string" ? value : field.mapToDriverValue(value);
              // As the driver's UTF-8 encoding would: a lone surrogate becomes U+FFFD, where
              // PostgreSQL's JSON parser would refuse the whole group.
              return [k, driven === null ? null : String(driven).toWellFormed()];
            }),
          ),
        ),
      ),
  };
}
