import "server-only";
import type { SQL } from "drizzle-orm";
import type { PgDialect, PgSession } from "drizzle-orm/pg-core";
import type { DbOrTx } from "@/db";

// The send path's hot statements (a key by its prefix, the mailbox lookup, the switches, the
// message claim and the final update with its audit event), built once per database handle with
// placeholders and prepared by name: drizzle does not rebuild their SQL for every message, and
// PostgreSQL parses and plans each one once per connection instead of at every execution. On
// PGlite the statements are the same, only unnamed. Any other statement is built as usual.
//
// A name stands for one text: node-postgres refuses a second text under a name a connection
// has already prepared, so a builder must give the same SQL every time it is called.

type Executable = { execute(params?: Record<string, unknown>): Promise<unknown> };

const built = new WeakMap<DbOrTx, Map<string, unknown>>();

/** The statement `build` makes, built once for `db` (a transaction builds its own). */
export function preparedOnce<T extends Executable>(
  db: DbOrTx,
  name: string,
  build: (db: DbOrTx, name: string) => T,
): T {
  let statements = built.get(db);
  if (!statements) {
    statements = new Map();
    built.set(db, statements);
  }
  let statement = statements.get(name) as T | undefined;
  if (statement === undefined) {
    statement = build(db, `mw_${name}`);
    statements.set(name, statement);
  }
  return statement;
}

/**
 * A statement written as raw SQL (with `sql.placeholder`s) that no query builder can express,
 * such as a data-modifying WITH, prepared like the others. Its execution answers the driver's
 * raw result.
 */
export function preparedSql(db: DbOrTx, name: string, build: () => SQL): Executable {
  return preparedOnce(db, name, (handle, statementName) => {
    // Drizzle's own `execute` goes the same way, unnamed and rebuilt each time.
    const { dialect, session } = handle as unknown as { dialect: PgDialect; session: PgSession };
    return session.prepareQuery(dialect.sqlToQuery(build()), undefined, statementName, false);
  });
}

/**
 * A piece of a prepared statement: SQL with placeholders, built once, and the values for them
 * this time. Parts of one statement use distinct placeholder names. `onlyIf`, when given, is a
 * condition the part adds to its own WHERE (a part written only if another one wrote a row).
 */
export type StatementPart = {
  build: (db: DbOrTx, onlyIf?: SQL) => SQL;
  params: Record<string, unknown>;
};
