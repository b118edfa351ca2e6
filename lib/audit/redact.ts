import "server-only";
import { createHmac } from "node:crypto";
import type { DbOrTx } from "@/db";
import { personPattern } from "@/db/queries/address-match";
import {
  listAuditEventsNaming,
  lockStoredAuditEvents,
  replaceAuditPersonalFields,
  setAuditErasureMacs,
} from "@/db/queries/audit";
import { type ChainProblem, macErasedPersonal, personalFieldsProblem } from "./chain";
import { auditChainKey } from "./key";
import { AuditChainError, SEAL_BATCH, sealChainInTransaction } from "./seal";

const REDACT_BATCH = 500;

/**
 * A stable stand-in for a person: the same address always gives the same pseudonym (so a
 * record still shows that two events concern one person), and without the audit key nobody can
 * tell whose it is.
 */
export function pseudonymOf(email: string): string {
  const digest = createHmac("sha256", auditChainKey())
    .update(`mailwarden.privacy.pseudonym.v1:${email.trim().toLowerCase()}`)
    .digest("hex");
  return `erased:${digest.slice(0, 12)}`;
}

export type Person = { userId: string | null; email: string; name: string | null };

/**
 * Every occurrence of the person's whole address (not inside a longer one) and full name in a
 * string, case-insensitively: the same pattern the erasure's queries match with.
 */
function replacerFor(person: Person, pseudonym: string) {
  const pattern = new RegExp(personPattern(person.email, person.name), "gi");
  return (text: string) => text.replace(pattern, () => pseudonym);
}

function replaceDeep(value: unknown, replace: (text: string) => string): unknown {
  if (typeof value === "string") return replace(value);
  if (Array.isArray(value)) return value.map((v) => replaceDeep(v, replace));
  if (value && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, replaceDeep(v, replace)]));
  }
  return value;
}

/**
 * Erasure or retention met events whose personal fields fail their MAC: refused, so the
 * transaction rolls back and `audit:verify` still names them.
 */
export class AuditPersonalFieldsError extends AuditChainError {
  constructor(readonly events: ChainProblem[]) {
    const first = events[0];
    super(
      `audit chain "${first?.chain}": seq ${events.map((e) => e.seq).join(", ")}: ${first?.reason}; their personal fields were not replaced`,
    );
  }
}

export type PersonalReplacement = {
  id: number;
  actorLabel: string | null;
  ip: string | null;
  userAgent: string | null;
  personal: Record<string, unknown>;
};

/**
 * The one way personal fields of sealed events change (erasure, and retention of IP addresses
 * and user agents in lib/privacy/retention.ts): the replacement is stored, marked erased at
 * `erasedAt` and vouched for by an erasure MAC; the chained hash, which covers only
 * `personal_mac`, is untouched. Callers hold the chain lock. Returns how many events changed.
 */
export async function replacePersonalFields(
  tx: DbOrTx,
  { rows, erasedAt }: { rows: PersonalReplacement[]; erasedAt: Date },
): Promise<number> {
  const key = auditChainKey();
  // Verification's own check first: replacing fields that fail it, and MAC'ing the result,
  // would pass an edit off as an erasure. Such a row is left as it is, and nothing is replaced.
  const damaged = (await lockStoredAuditEvents({ db: tx, ids: rows.map((r) => r.id) })).flatMap(
    (event) => {
      const reason = personalFieldsProblem(key, event);
      return reason ? [{ chain: event.chain, seq: event.seq ?? 0, id: event.id, reason }] : [];
    },
  );
  if (damaged.length > 0) throw new AuditPersonalFieldsError(damaged);
  const stored = await replaceAuditPersonalFields({ db: tx, erasedAt, rows });
  await setAuditErasureMacs({
    db: tx,
    macs: stored.map((row) => ({
      id: row.id,
      mac: macErasedPersonal(key, { ...row, personalMac: row.personalMac ?? "" }),
    })),
  });
  return stored.length;
}

/**
 * Replaces a person in one chain's events: as actor, the label becomes their pseudonym and the
 * IP address and user agent go; anywhere in `personal` (an address a message or invitation
 * named), their address becomes the pseudonym. Pending events are sealed first, under the chain
 * lock held to commit, so nothing is sealed with the old values afterwards. Each replaced event
 * gets an erasure MAC; the chain, which commits to the personal MAC only, still verifies.
 * Returns how many events changed. Run it in the transaction that erases the rest.
 */
export async function erasePersonFromAuditChain(
  tx: DbOrTx,
  { chain, person, erasedAt }: { chain: string; person: Person; erasedAt: Date },
): Promise<number> {
  let sealed: number;
  do {
    sealed = await sealChainInTransaction(tx, chain);
  } while (sealed === SEAL_BATCH);
  const pseudonym = pseudonymOf(person.email);
  const replace = replacerFor(person, pseudonym);
  let afterId = 0;
  let changed = 0;
  for (;;) {
    const rows = await listAuditEventsNaming({
      db: tx,
      chain,
      userId: person.userId,
      email: person.email,
      afterId,
      limit: REDACT_BATCH,
    });
    if (rows.length === 0) break;
    afterId = rows.at(-1)?.id ?? afterId;
    const replaced = rows.map((row): PersonalReplacement => {
      const isActor = person.userId !== null && row.actorId === person.userId;
      const label = row.actorLabel === null ? null : replace(row.actorLabel);
      return {
        id: row.id,
        actorLabel: isActor ? pseudonym : label,
        ip: isActor ? null : row.ip,
        userAgent: isActor ? null : row.userAgent,
        personal: replaceDeep(row.personal, replace) as Record<string, unknown>,
      };
    });
    const stored = await replacePersonalFields(tx, { rows: replaced, erasedAt });
    changed += stored;
    if (rows.length < REDACT_BATCH) break;
  }
  return changed;
}
