import "server-only";
import { type SQL, sql } from "drizzle-orm";

// Where free text (a subject, an SMTP reply, a notice, a webhook body, JSON) names a person, it
// names them by their whole address: erasing or exporting bob@example.com must not touch
// jimbob@example.com, bob@example.com.au or x.bob@example.com. The pattern is one regex source
// that JavaScript and PostgreSQL (9.6+, which has lookbehind) read alike, matched
// case-insensitively; it has no quantifiers, so it runs in linear time. Columns that hold only an
// address are compared with lower(col) = lower(address) instead.

/** A character that would continue the local part to the left (the common ones). */
const LOCAL = "[A-Za-z0-9._%+-]";
/** A character that would continue a word of a name (ASCII, alike in both engines). */
const WORD = "[A-Za-z0-9]";
/** A character that would continue the domain to the right; a dot does only if one follows. */
const DOMAIN = "[A-Za-z0-9-]";

/** Every regex metacharacter escaped: the text matches only itself (an address comes from a person). */
export function escapeRegex(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** The regex source that finds `email` as a whole address, not inside a longer one. */
export function wholeAddressPattern(email: string): string {
  return `(?<!${LOCAL})${escapeRegex(email.trim())}(?!${DOMAIN}|\\.${DOMAIN})`;
}

/**
 * A person in free text: their whole address, or their full name (3 characters or more) as
 * written, as whole words. Erasure replaces both in messages and in the audit chain (lib/audit/redact.ts).
 */
export function personPattern(email: string, name: string | null): string {
  const trimmed = name?.trim() ?? "";
  return [
    wholeAddressPattern(email),
    ...(trimmed.length >= 3 ? [wholeNamePattern(trimmed)] : []),
  ].join("|");
}

/** A name as whole words: erasing "Ann" leaves "Annual" and "Joanna" as they are. */
function wholeNamePattern(name: string): string {
  return `(?<!${WORD})${escapeRegex(name)}(?!${WORD})`;
}

/** Whether `text` (null counts as empty) has a match of `pattern`, in any case. */
export function matchesPattern(text: SQL, pattern: string): SQL<boolean> {
  return sql<boolean>`(coalesce(${text}, '') ~* ${pattern})`;
}

/** Whether `text` (null counts as empty) names `email` as a whole address, in any case. */
export function mentionsAddress(text: SQL, email: string): SQL<boolean> {
  return matchesPattern(text, wholeAddressPattern(email));
}

/**
 * `text` with every match of `pattern` (a source from wholeAddressPattern, maybe with more
 * alternatives) replaced by `replacement`, in any case; null stays null.
 */
export function replaceMatches(text: SQL, pattern: string, replacement: string): SQL<string> {
  // In a PostgreSQL replacement, \1 and \& stand for matched text: a backslash is doubled.
  return sql<string>`regexp_replace(${text}, ${pattern}, ${replacement.replaceAll("\\", "\\\\")}, 'gi')`;
}
