import "server-only";
import { sql } from "drizzle-orm";
import { type DbOrTx, getDb, retryingDeadlocks } from "@/db";
import { lockMemberships } from "@/db/queries/organizations";
import {
  cancelWaitingMessagesOf,
  completeDataRequest,
  countAccountRows,
  countSubjectData,
  deleteAccountIfNoMembership,
  deleteNoticesNaming,
  deleteNotificationEmailsNaming,
  deleteSubjectApiKeys,
  deleteSubjectInvitations,
  deleteSubjectMailboxes,
  deleteWebhookDeliveriesNaming,
  findUserByEmail,
  getDataRequest,
  insertDataRequest,
  listSubjectMailboxIds,
  lockOpenDataRequest,
  pseudonymizeDataRequests,
  pseudonymizeJobItems,
  removeRecipientFromMessages,
  setDataRequestReceipt,
} from "@/db/queries/privacy";
import type { DataRequest } from "@/db/schema";
import type { ChainProblem } from "@/lib/audit/chain";
import { verifyOrganizationChain } from "@/lib/audit/read";
import { erasePersonFromAuditChain, pseudonymOf } from "@/lib/audit/redact";
import { verifyAuditChain } from "@/lib/audit/verify";
import { writeAuditEvent } from "@/lib/audit/write";
import type { MemberContext, RequestInfo } from "@/lib/auth/context";
import { revokeMailbox } from "@/lib/oauth/revoke";
import { enforceRateLimit } from "@/lib/ratelimit/runtime";
import { eraseFromDemoInbox } from "./demo-inbox";
import { auditDamageRefusal, erasureRefusal } from "./erasure-refusals";
import { cancelQueuedBodiesNaming } from "./queued-bodies";

// Data subject requests: an officer records one (received on a date, due a month later), then
// carries it out: an export download, or an erasure after a confirmation listing what it does.

/** The officer acting: a member of the organisation with the privacy permission. */
type Officer = Pick<MemberContext, "orgId" | "actor" | "request">;

/** Due one calendar month after receipt (GDPR Art. 12(3)), at the same time of day. */
export function dueDateFor(receivedAt: Date): Date {
  const due = new Date(receivedAt);
  const day = due.getUTCDate();
  due.setUTCDate(1);
  due.setUTCMonth(due.getUTCMonth() + 1);
  const lastDay = new Date(Date.UTC(due.getUTCFullYear(), due.getUTCMonth() + 1, 0)).getUTCDate();
  due.setUTCDate(Math.min(day, lastDay));
  return due;
}

export function isOverdue(request: Pick<DataRequest, "status" | "dueAt">, now = new Date()) {
  return request.status === "open" && request.dueAt.getTime() < now.getTime();
}

export async function recordDataRequest(
  officer: Officer,
  input: { kind: "export" | "erasure"; email: string; receivedAt: Date },
) {
  await enforceRateLimit("consoleCreate", [`user:${officer.actor.id}`, `org:${officer.orgId}`]);
  const db = await getDb();
  return db.transaction(async (tx) => {
    const row = await insertDataRequest({
      db: tx,
      values: {
        orgId: officer.orgId,
        kind: input.kind,
        subjectEmail: input.email.toLowerCase(),
        requestedBy: officer.actor.id,
        receivedAt: input.receivedAt,
        dueAt: dueDateFor(input.receivedAt),
      },
    });
    await writeAuditEvent(tx, {
      orgId: officer.orgId,
      actor: officer.actor,
      action: "privacy.request_recorded",
      target: { type: "data_request", id: row.id },
      outcome: "success",
      request: officer.request,
      metadata: { kind: input.kind, dueAt: row.dueAt.toISOString() },
      personal: { email: row.subjectEmail },
    });
    return row;
  });
}

/**
 * What the organisation holds about the request's subject: the confirmation's counts. The
 * account's id scopes this organisation's own rows (a former member's keys, mailboxes and
 * messages); whether the address has an account at all, its name and its other memberships are
 * the organisation's business only while the person is a member of it. Sign-up is open, so
 * any stranger can record a request about any address.
 */
export async function describeSubject(db: DbOrTx, orgId: string, email: string) {
  const lower = email.toLowerCase();
  const found = await findUserByEmail({ db, email: lower });
  const userId = found?.id ?? null;
  const held = await countSubjectData({ db, orgId, userId, email: lower });
  const members = await db.execute(
    sql`select user_id, role from memberships where org_id = ${orgId}`,
  );
  const rows = (members as unknown as { rows: { user_id: string; role: string }[] }).rows;
  const role = (userId && rows.find((r) => r.user_id === userId)?.role) || null;
  const ownerCount = rows.filter((r) => r.role === "owner").length;
  if (!found || !role)
    return { user: null, userId, role: null, ownerCount, account: null, ...held };
  const account = await countAccountRows({ db, userId: found.id });
  // The account itself goes only when this organisation's membership is its last.
  const accountDeleted = account.memberships === 1;
  return {
    user: found,
    userId,
    role,
    ownerCount,
    account: { ...account, accountDeleted },
    ...held,
  };
}

export type SubjectSummary = Awaited<ReturnType<typeof describeSubject>>;

export async function getRequest(orgId: string, requestId: string) {
  return getDataRequest({ db: await getDb(), orgId, requestId });
}

/**
 * An officer's export download: completes the request (when it is an open export) and records
 * the download, whoever it is about. Returns null when the request is not this organisation's.
 */
export async function recordExportDownload(officer: Officer, requestId: string) {
  const db = await getDb();
  return db.transaction(async (tx) => {
    const request = await getDataRequest({ db: tx, orgId: officer.orgId, requestId });
    if (request?.kind !== "export") return null;
    if (request.status === "open") {
      await completeDataRequest({
        db: tx,
        orgId: officer.orgId,
        requestId,
        completedBy: officer.actor.id,
        receipt: {
          kind: "export",
          subject: request.subjectEmail,
          deliveredAt: new Date().toISOString(),
          by: officer.actor.label ?? officer.actor.id,
        },
      });
    }
    await writeAuditEvent(tx, {
      orgId: officer.orgId,
      actor: officer.actor,
      action: "privacy.export_downloaded",
      target: { type: "data_request", id: request.id },
      outcome: "success",
      request: officer.request,
      metadata: { scope: "organization" },
      personal: { email: request.subjectEmail },
    });
    return request;
  });
}

/**
 * A person's own export: recorded as a completed request in every organisation it covers, with
 * an audit event in each, so each organisation's officers see it.
 */
export async function recordOwnExport(
  person: { userId: string; email: string; label: string | null },
  orgIds: string[],
  request: RequestInfo,
) {
  const db = await getDb();
  const now = new Date();
  for (const orgId of orgIds) {
    await db.transaction(async (tx) => {
      const row = await insertDataRequest({
        db: tx,
        values: {
          orgId,
          kind: "export",
          subjectEmail: person.email.toLowerCase(),
          requestedBy: person.userId,
          receivedAt: now,
          dueAt: dueDateFor(now),
          status: "completed",
          completedAt: now,
          completedBy: person.userId,
          receipt: { kind: "export", scope: "self", deliveredAt: now.toISOString() },
        },
      });
      await writeAuditEvent(tx, {
        orgId,
        actor: { type: "user", id: person.userId, label: person.label },
        action: "privacy.export_downloaded",
        target: { type: "data_request", id: row.id },
        outcome: "success",
        request,
        metadata: { scope: "self" },
      });
    });
  }
}

export type ErasureResult =
  | { kind: "erased"; receipt: Record<string, unknown> }
  | { kind: "refused"; reason: string }
  | { kind: "not_found" };

/**
 * Carries out an open erasure request. Mailboxes are revoked at their providers first (each in
 * its own audited transaction, as a disconnect is); then one transaction deletes and replaces
 * everything else and completes the request; then the chain is verified and the result added to
 * the receipt.
 */
export async function eraseSubject(
  officer: Officer & Pick<MemberContext, "role">,
  requestId: string,
): Promise<ErasureResult> {
  const db = await getDb();
  const { orgId } = officer;
  const request = await getDataRequest({ db, orgId, requestId });
  if (request?.kind !== "erasure" || request.status !== "open") {
    return { kind: "not_found" };
  }
  const email = request.subjectEmail.toLowerCase();
  const before = await describeSubject(db, orgId, email);
  const refuse = async (refusal: { code: string; message: string; events?: ChainProblem[] }) => {
    await writeAuditEvent(db, {
      orgId,
      actor: officer.actor,
      action: "privacy.erasure_refused",
      target: { type: "data_request", id: requestId },
      outcome: "denied",
      request: officer.request,
      metadata: {
        reason: refusal.code,
        ...(refusal.events && { seqs: refusal.events.map((e) => e.seq) }),
      },
    });
    return { kind: "refused", reason: refusal.message } as const;
  };
  const refusal = erasureRefusal(before, officer.role);
  if (refusal) return refuse(refusal);
  const user = before.user;
  const userId = before.userId;

  const revocations: { mailboxId: string; result: string; detail: string | null }[] = [];
  for (const mailboxId of await listSubjectMailboxIds({ db, orgId, userId, email })) {
    try {
      const answer = await revokeMailbox({ ctx: officer, mailboxId, goneIsExpected: true });
      revocations.push({ mailboxId, result: answer.providerResult, detail: answer.detail });
    } catch {
      revocations.push({ mailboxId, result: "failed", detail: null });
    }
  }

  const pseudonym = pseudonymOf(email);
  const erasedAt = new Date();
  const erasing = retryingDeadlocks(() =>
    db.transaction(async (tx) => {
      const locked = await lockOpenDataRequest({ db: tx, orgId, requestId });
      if (!locked) return null;
      // Decided again under the membership lock, on both people's roles as they are now: the
      // revocations above take seconds, and roles may have moved meanwhile.
      const members = await lockMemberships({ db: tx, orgId });
      const roleOf = (id: string | null) => members.find((m) => m.userId === id)?.role ?? null;
      const ownerCount = members.filter((m) => m.role === "owner").length;
      const now = erasureRefusal({ role: roleOf(userId), ownerCount }, roleOf(officer.actor.id));
      if (now) return now;

      // Before their mailboxes and keys go and the address leaves the recipients: what still
      // waits for them, or to go out from their mailboxes or with their keys, is not sent.
      const queuedCancelled =
        (await cancelWaitingMessagesOf({ db: tx, orgId, userId, email })) +
        (await cancelQueuedBodiesNaming(tx, { orgId, email, name: user?.name ?? null }));
      const deleted = {
        mailboxes: await deleteSubjectMailboxes({ db: tx, orgId, userId, email }),
        apiKeys: userId ? await deleteSubjectApiKeys({ db: tx, orgId, userId }) : 0,
        invitations: await deleteSubjectInvitations({ db: tx, orgId, email }),
        notices: await deleteNoticesNaming({ db: tx, orgId, userId, email }),
        webhookDeliveries: await deleteWebhookDeliveriesNaming({ db: tx, orgId, email }),
        // Notification emails not yet sent to the person, or naming them, go with the notices.
        notificationEmails: await deleteNotificationEmailsNaming({ db: tx, orgId, email }),
        memberships: 0,
        sessions: 0,
        accounts: 0,
        userAccount: false,
      };
      if (userId) {
        await tx.execute(
          sql`delete from oauth_transactions where org_id = ${orgId} and user_id = ${userId}`,
        );
        const membership = await tx.execute(
          sql`delete from memberships where org_id = ${orgId} and user_id = ${userId} returning user_id`,
        );
        deleted.memberships = (membership as unknown as { rows: unknown[] }).rows.length;
        // Only a member's account, and only with their last membership: never a stranger's.
        const account = await countAccountRows({ db: tx, userId });
        if (deleted.memberships > 0 && account.memberships === 0) {
          deleted.userAccount = await deleteAccountIfNoMembership({ db: tx, userId });
          if (deleted.userAccount) {
            deleted.sessions = account.sessions;
            deleted.accounts = account.accounts;
          }
        }
      }
      const messages = await removeRecipientFromMessages({
        db: tx,
        orgId,
        email,
        name: user?.name ?? null,
        pseudonym,
      });
      const person = { userId, email, name: user?.name ?? null };
      let auditEvents = await erasePersonFromAuditChain(tx, { chain: orgId, person, erasedAt });
      // Events outside any organisation (sign-ins before the first membership) go with the account.
      if (deleted.userAccount) {
        auditEvents += await erasePersonFromAuditChain(tx, { chain: "", person, erasedAt });
      }
      await pseudonymizeDataRequests({ db: tx, orgId, email, pseudonym });
      await pseudonymizeJobItems({ db: tx, orgId, email, pseudonym });
      const receipt = {
        kind: "erasure",
        requestId,
        subject: pseudonym,
        erasedAt: erasedAt.toISOString(),
        by: officer.actor.label ?? officer.actor.id,
        mailboxesRevokedAtProvider: revocations,
        deleted,
        messages: {
          queuedCancelled,
          recipientRemovedFrom: messages.recipientRows,
          subjectOrReplyRewritten: messages.rewrittenRows,
        },
        auditEventsPseudonymised: auditEvents,
        kept:
          deleted.memberships > 0 && !deleted.userAccount
            ? "The person's account remains: they belong to another organisation, whose data this organisation cannot erase."
            : null,
      };
      await completeDataRequest({
        db: tx,
        orgId,
        requestId,
        completedBy: officer.actor.id,
        receipt,
      });
      await writeAuditEvent(tx, {
        orgId,
        actor: officer.actor,
        action: "privacy.erased",
        target: { type: "data_request", id: requestId },
        outcome: "success",
        request: officer.request,
        metadata: {
          subject: pseudonym,
          mailboxes: deleted.mailboxes,
          apiKeys: deleted.apiKeys,
          userAccount: deleted.userAccount,
          messages: messages.recipientRows,
          queuedCancelled,
          webhookDeliveries: deleted.webhookDeliveries,
          auditEvents,
        },
      });
      return receipt;
    }),
  );
  // Audit events whose personal fields were edited outside the app: nothing erased, refused.
  const receipt = await erasing.catch(auditDamageRefusal);
  if (receipt === null) return { kind: "not_found" };
  if ("code" in receipt) return refuse(receipt);
  const chain = await verifyOrganizationChain(db, orgId);
  const global = receipt.deleted.userAccount
    ? await verifyAuditChain({ db, chain: "", mode: "full" })
    : null;
  const verification = {
    verifiedAt: new Date().toISOString(),
    intact: chain.problem === null && (global?.problem ?? null) === null,
    events: chain.count,
    problem: chain.problem?.reason ?? global?.problem?.reason ?? null,
  };
  const demoInbox = await eraseFromDemoInbox(email);
  const final = { ...receipt, chainVerification: verification, ...(demoInbox && { demoInbox }) };
  await setDataRequestReceipt({ db, orgId, requestId, receipt: final });
  return { kind: "erased", receipt: final };
}
