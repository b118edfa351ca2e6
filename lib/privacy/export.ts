import "server-only";
import type { DbOrTx } from "@/db";
import {
  getUserProfile,
  listAuditEventsOfSubject,
  listDataRequestsAbout,
  listJobItemsNaming,
  listMembershipsWithOrg,
  listMessagesAddressedTo,
  listMessagesNaming,
  listMessagesSentBy,
  listNoticesNaming,
  listNotificationEmailsNaming,
  listSessionMetadata,
  listSignInAccounts,
  listSubjectApiKeys,
  listSubjectInvitations,
  listSubjectMailboxes,
  listWebhookDeliveriesNaming,
} from "@/db/queries/privacy";

// A data subject's export (access and portability): one JSON document written piece by piece,
// each list read in keyset batches, so memory stays flat however much the person has.

export const EXPORT_SCHEMA = "mailwarden.subject-export";
export const EXPORT_SCHEMA_VERSION = 1;
export const EXPORT_BATCH = 1000;

/** Stands, in an export, for an address that is not the subject's. */
const WITHHELD = "[another person's address, withheld]";

const EXPLANATION = {
  subject:
    "The address the export is about. hasAccount is true when the account is shown (your own export, or a member's), and null otherwise: an organisation is not told whether a non-member has an account.",
  profile: "Your account: name, email address, when it was created and verified.",
  memberships: "The organisations you belong to and your role in each.",
  sessions:
    "Your signed-in sessions: when each expires and which organisation it works in. Never the session token.",
  signInAccounts: "Which providers you sign in with. Never a token.",
  organizations: `Per organisation, what it holds about you. mailboxes: mailboxes you connected or whose address is yours (metadata, never tokens). apiKeys: API keys you created (name, prefix, dates; never the secret or its hash). messagesSent: messages you sent, yourself or with your API keys (metadata and recipients; a body is kept, encrypted, only while its message waits in the queue, and is not part of the export). messagesAddressed: messages addressed to you (to, cc or bcc), with your own entries among the recipients: the others are theirs. messagesNaming: other messages whose subject, provider reply or failure cause names your address, without their recipients (none is you). auditEvents: activity log events where you are the actor or the target, or that name your address; ip and userAgent are shown only for events you performed yourself, and are null for events performed by someone else (another member, an API key, even one you created, since whatever holds a key uses it, the system): that address and browser are theirs, not yours, while actorLabel still says who acted on your data; an address an event names (in personal, or as its targetId) is shown only when it is yours, one of your mailboxes' or one you connected a mailbox under yourself, and any other (someone you invited, say) reads "${WITHHELD}". invitations: invitations to your address (role and date). notices: notices on the dashboard for you or naming your address. notificationEmails: notification emails to you or naming your address, sent or waiting; recipient is null for one sent to someone else. webhookDeliveries: the organisation's webhook calls whose body names your address, with that body. dataRequests: the export and erasure requests the organisation recorded about your address. jobItems: incident jobs (revoking every mailbox) that took a mailbox with your address, and their result.`,
};

export type ExportScope =
  /** An officer's export: what one organisation holds about an address. */
  | { kind: "organization"; orgId: string; orgName: string; email: string; userId: string | null }
  /** A person's own export: their account and every organisation they belong to. */
  | { kind: "self"; userId: string; email: string };

type OrgPart = { orgId: string; orgName: string };

function json(value: unknown): string {
  return JSON.stringify(value);
}

/** Runs before each page is read: throws when the caller may no longer have the rest. */
type PageCheck = () => Promise<void>;

async function* list<T>(
  check: PageCheck,
  fetchPage: (after: T | undefined) => Promise<unknown[]>,
  cursorOf: (row: unknown) => T,
): AsyncGenerator<string> {
  yield "[";
  let after: T | undefined;
  let first = true;
  for (;;) {
    await check();
    const rows = await fetchPage(after);
    for (const row of rows) {
      yield `${first ? "" : ","}\n${json(row)}`;
      first = false;
    }
    const last = rows.at(-1);
    if (last === undefined || rows.length < EXPORT_BATCH) break;
    after = cursorOf(last);
  }
  yield "]";
}

async function* organizationPart(
  db: DbOrTx,
  org: OrgPart,
  subject: { userId: string | null; email: string },
  check: PageCheck,
): AsyncGenerator<string> {
  const { orgId } = org;
  const { userId, email } = subject;
  await check();
  const mailboxes = await listSubjectMailboxes({ db, orgId, userId, email });
  const apiKeys = userId === null ? [] : await listSubjectApiKeys({ db, orgId, userId });
  const invitations = await listSubjectInvitations({ db, orgId, email });
  const jobItems = await listJobItemsNaming({ db, orgId, email });
  yield `{"orgId":${json(orgId)},"name":${json(org.orgName)},"mailboxes":${json(mailboxes)},"apiKeys":${json(apiKeys)},"invitations":${json(invitations)},"jobItems":${json(jobItems)},"messagesSent":`;
  if (userId === null) yield "[]";
  else {
    yield* list<string>(
      check,
      (after) => listMessagesSentBy({ db, orgId, userId, after: after ?? "", limit: EXPORT_BATCH }),
      (row) => (row as { id: string }).id,
    );
  }
  yield `,"messagesAddressed":`;
  yield* list<string>(
    check,
    (after) =>
      listMessagesAddressedTo({ db, orgId, email, after: after ?? "", limit: EXPORT_BATCH }),
    (row) => (row as { id: string }).id,
  );
  yield `,"messagesNaming":`;
  yield* list<string>(
    check,
    (after) => listMessagesNaming({ db, orgId, email, after: after ?? "", limit: EXPORT_BATCH }),
    (row) => (row as { id: string }).id,
  );
  yield `,"auditEvents":`;
  // The addresses that are the subject's: theirs, and the mailboxes this export lists as theirs.
  const own = new Set([email, ...mailboxes.map((m) => m.address.toLowerCase())]);
  yield* list<number>(
    check,
    async (afterId) =>
      (
        await listAuditEventsOfSubject({
          db,
          orgId,
          userId,
          email,
          afterId: afterId ?? 0,
          limit: EXPORT_BATCH,
        })
      ).map((event) => {
        addConnectedAddress(event, userId, own);
        return asShownToSubject(event, { userId, own });
      }),
    (row) => (row as { id: number }).id,
  );
  const limit = EXPORT_BATCH;
  const byId = (row: unknown) => (row as { id: string }).id;
  yield `,"notices":`;
  yield* list<string>(
    check,
    (after) => listNoticesNaming({ db, orgId, userId, email, after: after ?? "", limit }),
    byId,
  );
  yield `,"notificationEmails":`;
  yield* list<string>(
    check,
    (after) => listNotificationEmailsNaming({ db, orgId, email, after: after ?? "", limit }),
    byId,
  );
  yield `,"webhookDeliveries":`;
  yield* list<string>(
    check,
    async (after) =>
      (await listWebhookDeliveriesNaming({ db, orgId, email, after: after ?? "", limit })).map(
        (delivery) => ({ ...delivery, body: parsedBody(delivery.body) }),
      ),
    byId,
  );
  yield `,"dataRequests":`;
  yield* list<string>(
    check,
    (after) => listDataRequestsAbout({ db, orgId, email, after: after ?? "", limit }),
    byId,
  );
  yield "}";
}

/**
 * An event as its subject may see it (Art. 15(4): their access must not disclose others' data).
 * An event someone else performed (another member, an API key, the system) keeps who acted, but
 * not their IP address and user agent: those are the actor's. Whoever acted, an address the
 * event names (in `personal`, or as its target: a refused invitation's target was the invitee's
 * address until such events named it in `personal` only) is shown only when it is one of `own`: an admin's invitation of Bob is the admin's
 * act, but Bob's address is Bob's.
 */
function asShownToSubject<
  T extends {
    actorType: string;
    actorId: string | null;
    targetId: string | null;
    ip: unknown;
    userAgent: unknown;
    personal: Record<string, unknown>;
  },
>(event: T, subject: { userId: string | null; own: ReadonlySet<string> }): T {
  const shown = (value: unknown) =>
    value === null || (typeof value === "string" && subject.own.has(value.toLowerCase()))
      ? value
      : WITHHELD;
  // A call with the subject's own API key is not theirs here: a key acts for whatever holds it (a
  // service, a colleague, whoever it leaked to), so the caller's address and browser are not
  // known to be the subject's and may be another person's. actorId still names the key.
  return {
    ...event,
    ...(isActOf(event, subject.userId) ? {} : { ip: null, userAgent: null }),
    targetId: event.targetId?.includes("@") ? shown(event.targetId) : event.targetId,
    personal: Object.fromEntries(Object.entries(event.personal).map(([k, v]) => [k, shown(v)])),
  };
}

/**
 * An address the subject connected a mailbox under, themselves, is theirs as a current
 * mailbox's is: a reconnect's `previousAddress` names it once the provider reports a new one.
 * Not "the former address of a mailbox now theirs": an account renamed from Alice's address to
 * theirs had Alice's. Events come in id order, so a connection precedes what names it later.
 */
function addConnectedAddress(
  event: { action: string; actorType: string; actorId: string | null; personal: object },
  userId: string | null,
  own: Set<string>,
): void {
  const address = (event.personal as { address?: unknown }).address;
  if (
    isActOf(event, userId) &&
    event.action === "mailbox.connected" &&
    typeof address === "string"
  ) {
    own.add(address.toLowerCase());
  }
}

/** Whether the event is the subject's own act, signed in (not through one of their keys). */
function isActOf(event: { actorType: string; actorId: string | null }, userId: string | null) {
  return userId !== null && event.actorType === "user" && event.actorId === userId;
}

/** A webhook body as the JSON it was sent as (its text, should it not parse). */
function parsedBody(body: string): unknown {
  try {
    return JSON.parse(body);
  } catch {
    return body;
  }
}

/**
 * The export as a sequence of JSON text chunks; joined, they are one document. `check` runs
 * with each organisation's id before every page of it is read (lib/auth/download-access.ts):
 * when it throws, so does the export, and the download fails instead of completing.
 */
export async function* subjectExport(
  db: DbOrTx,
  scope: ExportScope,
  check: (orgId: string) => Promise<void> = async () => {},
): AsyncGenerator<string> {
  const email = scope.email.toLowerCase();
  const userId = scope.userId;
  const profile = userId === null ? null : await getUserProfile({ db, userId });
  const allMemberships = userId === null ? [] : await listMembershipsWithOrg({ db, userId });
  const memberships =
    scope.kind === "self" ? allMemberships : allMemberships.filter((m) => m.orgId === scope.orgId);
  // An officer sees the account only through the person's membership of their organisation,
  // and never which other organisations the person belongs to.
  const isMember = memberships.length > 0;
  const sessions =
    userId === null || (scope.kind === "organization" && !isMember)
      ? []
      : (await listSessionMetadata({ db, userId })).map((s) =>
          scope.kind === "self"
            ? s
            : { expires: s.expires, activeInThisOrganization: s.activeOrgId === scope.orgId },
        );
  const signInAccounts =
    userId === null || scope.kind === "organization"
      ? []
      : await listSignInAccounts({ db, userId });
  const orgs: OrgPart[] =
    scope.kind === "self"
      ? memberships.map((m) => ({ orgId: m.orgId, orgName: m.orgName }))
      : [{ orgId: scope.orgId, orgName: scope.orgName }];

  yield `{"schema":${json(EXPORT_SCHEMA)},"schemaVersion":${EXPORT_SCHEMA_VERSION},"generatedAt":${json(new Date().toISOString())}`;
  yield `,"scope":${json(
    scope.kind === "self"
      ? { kind: "self", description: "Your own data, in every organisation you belong to." }
      : {
          kind: "organization",
          orgId: scope.orgId,
          description: "What this organisation holds about the address.",
        },
  )}`;
  yield `,"explanation":${json(EXPLANATION)}`;
  // Whether a stranger's address has an account is not this organisation's to learn.
  const shownProfile = scope.kind === "organization" && !isMember ? null : profile;
  yield `,"subject":${json({ email, hasAccount: shownProfile === null ? null : true })}`;
  yield `,"profile":${json(shownProfile)}`;
  yield `,"memberships":${json(memberships)}`;
  yield `,"sessions":${json(sessions)}`;
  yield `,"signInAccounts":${json(signInAccounts)}`;
  yield `,"organizations":[`;
  let first = true;
  for (const org of orgs) {
    if (!first) yield ",";
    first = false;
    yield* organizationPart(db, org, { userId, email }, () => check(org.orgId));
  }
  yield "]}\n";
}

const CHUNK_BYTES = 64 * 1024;

/** A pull-driven byte stream of the export: the next batch is read only when the client reads. */
export function exportStream(chunks: AsyncGenerator<string>): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        let text = "";
        while (text.length < CHUNK_BYTES) {
          const next = await chunks.next();
          if (next.done) {
            if (text) controller.enqueue(encoder.encode(text));
            controller.close();
            return;
          }
          text += next.value;
        }
        controller.enqueue(encoder.encode(text));
      },
      async cancel() {
        await chunks.return(undefined);
      },
    },
    { highWaterMark: 2 },
  );
}
