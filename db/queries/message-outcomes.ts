import "server-only";
import { type SQL, sql } from "drizzle-orm";
import type { PgColumn } from "drizzle-orm/pg-core";
import type { DbOrTx } from "@/db";
import { type GroupedWrite, recordset, writeGrouped } from "@/db/grouped";
import { preparedSql } from "@/db/prepared";
import { auditEvents, messages, webhookDeliveries } from "@/db/schema";
import { type AuditEventColumn, auditEventsInsert, insertAuditEventWithChange } from "./audit";
import { type FinishParams, finishMessageTemplate, finishUpdate } from "./messages";
import {
  type EventDeliveriesInput,
  eventDeliveriesPart,
  eventDeliveriesStatement,
} from "./webhooks";

// A message's outcome: the row's final update, its high-volume audit event and, for an API
// send, its webhook deliveries, written by one statement that writes the event and deliveries
// only when the update moved the row (still this attempt's: db/queries/messages.ts). Written
// alone or grouped with the outcomes that arrive while one is on its way (db/grouped.ts).

export type MessageOutcome = {
  finish: FinishParams;
  /** The event's stored values (lib/audit/write.ts); every event carries the same columns. */
  event: typeof auditEvents.$inferInsert;
  webhook: EventDeliveriesInput | null;
};

/**
 * Whether the row moved (and so the event was written), and how many webhook deliveries the
 * statement wrote — a group's statement, for all its outcomes: the caller only asks whether to
 * wake the webhook sweep.
 */
export type OutcomeWritten = { isWritten: boolean; also: number };

const FINISH_FIELDS = {
  orgId: messages.orgId,
  messageId: messages.id,
  claimId: messages.claimId,
  status: messages.status,
  smtpResponse: messages.smtpResponse,
  providerMessageId: messages.providerMessageId,
  errorCode: messages.errorCode,
  sentAt: "timestamptz",
  lastError: messages.lastError,
  webhookOrgId: webhookDeliveries.orgId,
  webhookType: webhookDeliveries.eventType,
  webhookBody: webhookDeliveries.body,
  webhookDeadlineSeconds: "integer",
} as const;

type Field = keyof typeof FINISH_FIELDS | `audit_${AuditEventColumn}`;

// Built once per set of event columns (one in practice): `many` runs on the send path.
const recordsets = new Map<string, ReturnType<typeof recordset<Field>>>();

function rowsOf(columns: AuditEventColumn[]) {
  const key = columns.join();
  let rows = recordsets.get(key);
  if (!rows) {
    const fields: Record<string, PgColumn | string> = { ...FINISH_FIELDS };
    for (const c of columns) fields[`audit_${c}`] = auditEvents[c];
    rows = recordset(fields as Record<Field, PgColumn | string>, "f");
    recordsets.set(key, rows);
  }
  return rows;
}

function valuesOf(outcome: MessageOutcome, columns: AuditEventColumn[]): Record<Field, unknown> {
  const { finish, event, webhook } = outcome;
  return {
    ...finish,
    webhookOrgId: webhook?.orgId ?? null,
    webhookType: webhook?.type ?? null,
    webhookBody: webhook?.body ?? null,
    webhookDeadlineSeconds: webhook?.deadlineSeconds ?? null,
    ...Object.fromEntries(columns.map((c) => [`audit_${c}`, event[c]])),
  } as Record<Field, unknown>;
}

/** The group's statement (exported for the test of its plan). */
export function groupedOutcomesStatement(db: DbOrTx, columns: AuditEventColumn[]): SQL {
  const rows = rowsOf(columns);
  const f = rows.field;
  // Matched on the claim too: a stale outcome of the same message in the group is not this row's.
  const changed = sql`(f."messageId", f."claimId") in (select id, claim_id from change)`;
  const change = finishUpdate(
    db,
    {
      orgId: f("orgId"),
      messageId: f("messageId"),
      claimId: f("claimId"),
      amongIds: sql`array(select "messageId" from input)`,
    },
    {
      status: f("status"),
      smtpResponse: f("smtpResponse"),
      providerMessageId: f("providerMessageId"),
      errorCode: f("errorCode"),
      sentAt: f("sentAt"),
      lastError: f("lastError"),
    },
  ).from(sql`input f`);
  const deliveries = eventDeliveriesStatement({
    orgId: f("webhookOrgId"),
    type: f("webhookType"),
    body: f("webhookBody"),
    deadlineSeconds: f("webhookDeadlineSeconds"),
    from: sql`input f`,
    onlyIf: changed,
  });
  const events = auditEventsInsert(
    columns,
    (c) => f(`audit_${c}`),
    sql`from input f where ${changed}`,
  );
  return sql`with input as (select * from ${rows.from("rows")}),
    change as (${change.getSQL()} returning ${messages.id}, ${messages.claimId}),
    also as (${deliveries} returning 1),
    events as (${events} returning 1)
    select id, claim_id as "claimId", (select count(*)::int from also) as "also" from change`;
}

const outcomeWrite: GroupedWrite<MessageOutcome, OutcomeWritten> = {
  groupOf: (outcome) => outcome.finish.orgId,
  one: (db, { finish, event, webhook }) =>
    insertAuditEventWithChange({
      db,
      name: webhook ? "message_outcome_webhook" : "message_outcome",
      values: event,
      change: { build: finishMessageTemplate, params: finish },
      ...(webhook ? { also: eventDeliveriesPart(webhook) } : {}),
    }),
  async many(db, outcomes) {
    const columns = Object.keys(outcomes[0]?.event ?? {}) as AuditEventColumn[];
    const result = (await preparedSql(db, "message_outcomes", () =>
      groupedOutcomesStatement(db, columns),
    ).execute({
      rows: rowsOf(columns).encode(outcomes.map((o) => valuesOf(o, columns))),
    })) as { rows: Array<{ id: string; claimId: string; also: number }> };
    const moved = new Set(result.rows.map((r) => `${r.id} ${r.claimId}`));
    const also = Number(result.rows[0]?.also ?? 0);
    return outcomes.map((o) => ({
      isWritten: moved.has(`${o.finish.messageId} ${o.finish.claimId}`),
      also,
    }));
  },
};

/** Writes the outcome: with the others that arrive meanwhile, in one statement. */
export function writeMessageOutcome(db: DbOrTx, outcome: MessageOutcome): Promise<OutcomeWritten> {
  return writeGrouped(db, outcomeWrite, outcome);
}
