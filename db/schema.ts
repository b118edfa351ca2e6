import { randomUUID } from "node:crypto";
import { relations, sql } from "drizzle-orm";
import {
  bigserial,
  boolean,
  date,
  index,
  integer,
  jsonb,
  pgEnum,
  pgTable,
  primaryKey,
  text,
  timestamp,
  uniqueIndex,
} from "drizzle-orm/pg-core";

const id = () =>
  text("id")
    .primaryKey()
    .$defaultFn(() => randomUUID());
const createdAt = () => timestamp("created_at", { withTimezone: true }).notNull().defaultNow();

// ---- Auth.js (database sessions, so that "sign everyone out" is a delete) ----

export const users = pgTable("users", {
  id: id(),
  name: text("name"),
  email: text("email").unique(),
  emailVerified: timestamp("email_verified", { mode: "date", withTimezone: true }),
  image: text("image"),
  createdAt: createdAt(),
});

// Sign-in only: the adapter wrapper strips provider tokens before they reach this table
// (mailbox grants live in encrypted columns of `mailboxes`).
export const accounts = pgTable(
  "accounts",
  {
    userId: text("user_id")
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    type: text("type").notNull(),
    provider: text("provider").notNull(),
    providerAccountId: text("provider_account_id").notNull(),
    refresh_token: text("refresh_token"),
    access_token: text("access_token"),
    expires_at: integer("expires_at"),
    token_type: text("token_type"),
    scope: text("scope"),
    id_token: text("id_token"),
    session_state: text("session_state"),
  },
  (t) => [primaryKey({ columns: [t.provider, t.providerAccountId] })],
);

export const sessions = pgTable("sessions", {
  sessionToken: text("session_token").primaryKey(),
  userId: text("user_id")
    .notNull()
    .references(() => users.id, { onDelete: "cascade" }),
  expires: timestamp("expires", { mode: "date", withTimezone: true }).notNull(),
  // The organisation this session works in; null until chosen, and read as the oldest
  // membership whenever it is null or no longer a membership. A set null (not a cascade) so that
  // an organisation going away does not sign its members out.
  activeOrgId: text("active_org_id").references(() => organizations.id, { onDelete: "set null" }),
});

export const verificationTokens = pgTable(
  "verification_tokens",
  {
    identifier: text("identifier").notNull(),
    token: text("token").notNull(),
    expires: timestamp("expires", { mode: "date", withTimezone: true }).notNull(),
  },
  (t) => [primaryKey({ columns: [t.identifier, t.token] })],
);

// ---- Organisations and roles ----

export const roleEnum = pgEnum("role", ["owner", "admin", "sender", "compliance"]);

export const organizations = pgTable("organizations", {
  id: id(),
  name: text("name").notNull(),
  createdAt: createdAt(),
});

export const memberships = pgTable(
  "memberships",
  {
    orgId: text("org_id")
      .notNull()
      .references(() => organizations.id, { onDelete: "cascade" }),
    userId: text("user_id")
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    role: roleEnum("role").notNull(),
    createdAt: createdAt(),
  },
  (t) => [
    primaryKey({ columns: [t.orgId, t.userId] }),
    index("memberships_user_idx").on(t.userId),
    // The members page's keyset order (newest first).
    index("memberships_org_created_idx").on(t.orgId, t.createdAt, t.userId),
  ],
);

// People invited by email. An invitation waits until the invitee, signed in with that address
// verified by their provider, accepts or declines it; nobody joins without that click.
export const invitations = pgTable(
  "invitations",
  {
    id: id(),
    orgId: text("org_id")
      .notNull()
      .references(() => organizations.id, { onDelete: "cascade" }),
    email: text("email").notNull(),
    role: roleEnum("role").notNull(),
    invitedBy: text("invited_by").references(() => users.id, { onDelete: "set null" }),
    createdAt: createdAt(),
  },
  (t) => [
    uniqueIndex("invitations_org_email_idx").on(t.orgId, t.email),
    index("invitations_email_idx").on(t.email),
    // The keyset orders of the members page and of a person's invitations (newest first).
    index("invitations_org_created_idx").on(t.orgId, t.createdAt, t.id),
    index("invitations_email_created_idx").on(t.email, t.createdAt, t.id),
  ],
);

// ---- Audit log: append-only, one keyed hash chain per organisation ('' chains global events) ----

export const auditOutcomeEnum = pgEnum("audit_outcome", ["success", "failure", "denied"]);

// seq, prev_hash and hash stay null until the sealer (lib/audit/seal.ts) places the row in its
// chain; id is the insertion order the sealer follows. Personal data (actor label, ip, user agent
// and `personal`: the email addresses an event names) is kept apart from `metadata`: the chain
// commits to `personal_mac`, a keyed hash of it, so erasure can replace it with pseudonyms
// (`personal_erased_at`, vouched for by `personal_erased_mac`) and the chain still verifies.
export const auditEvents = pgTable(
  "audit_events",
  {
    id: bigserial("id", { mode: "number" }).primaryKey(),
    chain: text("chain").notNull(),
    seq: integer("seq"),
    orgId: text("org_id").references(() => organizations.id, { onDelete: "set null" }),
    occurredAt: timestamp("occurred_at", { withTimezone: true }).notNull(),
    actorType: text("actor_type").notNull(),
    actorId: text("actor_id"),
    actorLabel: text("actor_label"),
    action: text("action").notNull(),
    targetType: text("target_type"),
    targetId: text("target_id"),
    outcome: auditOutcomeEnum("outcome").notNull(),
    ip: text("ip"),
    userAgent: text("user_agent"),
    metadata: jsonb("metadata").$type<Record<string, unknown>>().notNull().default({}),
    personal: jsonb("personal").$type<Record<string, unknown>>().notNull().default({}),
    personalMac: text("personal_mac"),
    personalErasedAt: timestamp("personal_erased_at", { withTimezone: true }),
    personalErasedMac: text("personal_erased_mac"),
    prevHash: text("prev_hash"),
    hash: text("hash"),
  },
  (t) => [
    uniqueIndex("audit_events_chain_seq_idx").on(t.chain, t.seq),
    // The activity page's keyset order, plain and per filter: each page is one index range,
    // read backwards for newest first (ascending, so that it matches `desc` = NULLS FIRST).
    index("audit_events_chain_time_idx").on(t.chain, t.occurredAt, t.id),
    index("audit_events_chain_action_time_idx").on(t.chain, t.action, t.occurredAt, t.id),
    index("audit_events_chain_actor_time_idx").on(t.chain, t.actorId, t.occurredAt, t.id),
    index("audit_events_chain_target_time_idx").on(
      t.chain,
      t.targetType,
      t.targetId,
      t.occurredAt,
      t.id,
    ),
    index("audit_events_unsealed_idx").on(t.chain, t.id).where(sql`${t.seq} is null`),
    // The events that still hold an IP address or user agent: retention reads only these.
    index("audit_events_network_kept_idx")
      .on(t.chain, t.occurredAt, t.id)
      .where(sql`${t.ip} is not null or ${t.userAgent} is not null`),
  ],
);

// A MAC'd (seq, hash) every CHECKPOINT_EVERY events: page views verify from the newest one a
// previous verification reached (verified_at) instead of from genesis.
export const auditCheckpoints = pgTable(
  "audit_checkpoints",
  {
    chain: text("chain").notNull(),
    seq: integer("seq").notNull(),
    hash: text("hash").notNull(),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull(),
    mac: text("mac").notNull(),
    verifiedAt: timestamp("verified_at", { withTimezone: true }),
  },
  (t) => [primaryKey({ columns: [t.chain, t.seq] })],
);

// The sealed end of each chain, MAC'd and moved in the sealer's transaction: deleting the
// newest events leaves it pointing past the end.
export const auditChainHeads = pgTable("audit_chain_heads", {
  chain: text("chain").primaryKey(),
  seq: integer("seq").notNull(),
  hash: text("hash").notNull(),
  updatedAt: timestamp("updated_at", { withTimezone: true }).notNull(),
  mac: text("mac").notNull(),
});

// Where a retention purge cut a chain: the (seq, hash) of the newest purged event, MAC'd, so
// verification starts there instead of at genesis. Without it, a missing start is a deletion.
export const auditChainAnchors = pgTable("audit_chain_anchors", {
  chain: text("chain").primaryKey(),
  seq: integer("seq").notNull(),
  hash: text("hash").notNull(),
  purgedAt: timestamp("purged_at", { withTimezone: true }).notNull(),
  mac: text("mac").notNull(),
});

// Per-organisation settings; a null means the default.
// What an organisation without a settings row gets, and what the columns default to.
export const DEFAULT_MESSAGE_PERSONAL_RETENTION_DAYS = 90;
export const DEFAULT_AUDIT_NETWORK_RETENTION_DAYS = 30;

export const organizationSettings = pgTable("organization_settings", {
  orgId: text("org_id")
    .primaryKey()
    .references(() => organizations.id, { onDelete: "cascade" }),
  /** Audit events older than this many days are purged daily; null keeps them forever. */
  auditRetentionDays: integer("audit_retention_days"),
  /** Messages older than this many days lose their recipients and subject; null keeps them. */
  messagePersonalRetentionDays: integer("message_personal_retention_days").default(
    DEFAULT_MESSAGE_PERSONAL_RETENTION_DAYS,
  ),
  /** Audit events older than this many days lose their IP address and user agent; null keeps. */
  auditNetworkRetentionDays: integer("audit_network_retention_days").default(
    DEFAULT_AUDIT_NETWORK_RETENTION_DAYS,
  ),
  // Facts about the OAuth clients that only an administrator can know (the provider consoles
  // hold them, no API tells us): entered on the Security page, which warns from them.
  googlePublishingStatus: text("google_publishing_status", { enum: ["testing", "production"] }),
  googleSecretExpiresOn: date("google_secret_expires_on"),
  microsoftSecretExpiresOn: date("microsoft_secret_expires_on"),
  /** The connected mailbox notification emails are sent from; null: dashboard notices only. */
  notificationMailboxId: text("notification_mailbox_id").references(() => mailboxes.id, {
    onDelete: "set null",
  }),
  updatedAt: timestamp("updated_at", { withTimezone: true }).notNull().defaultNow(),
});

// ---- The deployment: which processes run, and when each key was first seen ----

// Each process writes its heartbeat every 30 s: the Security page counts the instances seen in
// the last two minutes, to warn when the in-process rate limiter is split across several.
export const instances = pgTable("instances", {
  id: text("id").primaryKey(),
  host: text("host").notNull(),
  pid: integer("pid").notNull(),
  startedAt: timestamp("started_at", { withTimezone: true }).notNull(),
  lastSeenAt: timestamp("last_seen_at", { withTimezone: true }).notNull(),
});

// A key spec carries no date: a key's age is counted from when a process first loaded it.
export const encryptionKeys = pgTable("encryption_keys", {
  id: text("id").primaryKey(),
  firstSeenAt: timestamp("first_seen_at", { withTimezone: true }).notNull().defaultNow(),
});

/**
 * Notification emails waiting to go out: one row per recipient and event. The flusher sends
 * each recipient's rows of one organisation as one digest and stamps `sent_at` (also when the
 * send was refused: the outcome says which, and the refusal is in the audit log).
 */
export const notificationOutbox = pgTable(
  "notification_outbox",
  {
    id: id(),
    orgId: text("org_id")
      .notNull()
      .references(() => organizations.id, { onDelete: "cascade" }),
    recipient: text("recipient").notNull(),
    event: jsonb("event").$type<{ kind: string; title: string; body: string }>().notNull(),
    createdAt: createdAt(),
    sentAt: timestamp("sent_at", { withTimezone: true }),
    outcome: text("outcome"),
  },
  (t) => [index("notification_outbox_pending_idx").on(t.sentAt, t.createdAt)],
);
// ---- Data subject requests: access/portability exports and erasures, with their receipts ----

export const dataRequestKindEnum = pgEnum("data_request_kind", ["export", "erasure"]);
export const dataRequestStatusEnum = pgEnum("data_request_status", [
  "open",
  "completed",
  "refused",
]);

// `subject_email` is who the request is about; an erasure replaces it (and every other request of
// the organisation naming that address) with the person's pseudonym. `receipt` is what was done.
export const dataRequests = pgTable(
  "data_requests",
  {
    id: id(),
    orgId: text("org_id")
      .notNull()
      .references(() => organizations.id, { onDelete: "cascade" }),
    kind: dataRequestKindEnum("kind").notNull(),
    subjectEmail: text("subject_email").notNull(),
    requestedBy: text("requested_by").references(() => users.id, { onDelete: "set null" }),
    receivedAt: timestamp("received_at", { withTimezone: true }).notNull(),
    dueAt: timestamp("due_at", { withTimezone: true }).notNull(),
    status: dataRequestStatusEnum("status").notNull().default("open"),
    completedAt: timestamp("completed_at", { withTimezone: true }),
    completedBy: text("completed_by").references(() => users.id, { onDelete: "set null" }),
    receipt: jsonb("receipt").$type<Record<string, unknown>>(),
    createdAt: createdAt(),
  },
  (t) => [
    index("data_requests_org_due_idx").on(t.orgId, t.status, t.dueAt),
    // The privacy page's keyset order (latest received first).
    index("data_requests_org_received_idx").on(t.orgId, t.receivedAt, t.id),
  ],
);

// ---- Incident switches: global (org_id null) or per organisation ----

export const switches = pgTable(
  "switches",
  {
    id: id(),
    kind: text("kind").notNull(),
    scopeKey: text("scope_key").notNull(),
    orgId: text("org_id").references(() => organizations.id, { onDelete: "cascade" }),
    reason: text("reason").notNull(),
    setBy: text("set_by").references(() => users.id, { onDelete: "set null" }),
    setAt: createdAt(),
  },
  (t) => [uniqueIndex("switches_kind_scope_idx").on(t.kind, t.scopeKey)],
);

// ---- Long operations (revoke every mailbox, re-encrypt tokens): resumable, cancellable ----

export const jobStatusEnum = pgEnum("job_status", [
  "queued",
  "running",
  "done",
  "cancelled",
  "failed",
]);

export const jobs = pgTable(
  "jobs",
  {
    id: id(),
    kind: text("kind").notNull(),
    // Null for a deployment-wide job (re-encrypting every token).
    orgId: text("org_id").references(() => organizations.id, { onDelete: "cascade" }),
    status: jobStatusEnum("status").notNull().default("queued"),
    total: integer("total").notNull().default(0),
    done: integer("done").notNull().default(0),
    failed: integer("failed").notNull().default(0),
    createdBy: text("created_by").references(() => users.id, { onDelete: "set null" }),
    reason: text("reason"),
    error: text("error"),
    // How many times a process took it (lib/jobs/runner.ts): bounds resuming an interrupted job.
    runs: integer("runs").notNull().default(0),
    // The process running it renews the lease; an expired lease means that process died.
    leaseOwner: text("lease_owner"),
    leaseUntil: timestamp("lease_until", { withTimezone: true }),
    createdAt: createdAt(),
    startedAt: timestamp("started_at", { withTimezone: true }),
    finishedAt: timestamp("finished_at", { withTimezone: true }),
  },
  (t) => [index("jobs_org_kind_idx").on(t.orgId, t.kind, t.createdAt)],
);

export const jobItems = pgTable(
  "job_items",
  {
    jobId: text("job_id")
      .notNull()
      .references(() => jobs.id, { onDelete: "cascade" }),
    itemId: text("item_id").notNull(),
    label: text("label"),
    // pending → started (the work may have reached the outside world) → finished
    state: text("state").notNull().default("pending"),
    result: text("result"),
    detail: text("detail"),
    // Attempts whose work threw; the item is tried again until MAX_ITEM_ATTEMPTS, then `error`.
    attempts: integer("attempts").notNull().default(0),
    finishedAt: timestamp("finished_at", { withTimezone: true }),
  },
  (t) => [
    primaryKey({ columns: [t.jobId, t.itemId] }),
    index("job_items_state_idx").on(t.jobId, t.state),
  ],
);

// ---- Mailboxes and their OAuth grants (tokens only as ciphertext, see lib/crypto) ----

// The mail providers a mailbox can be connected through. The columns stay plain text typed
// in TypeScript (not a database enum), so adding a provider needs no migration.
export const PROVIDER_IDS = ["google", "microsoft", "demo"] as const;

export const mailboxStatusEnum = pgEnum("mailbox_status", [
  "connected",
  "needs_reconnect",
  "admin_action_required",
  "paused",
  "revoked",
]);

export const mailboxes = pgTable(
  "mailboxes",
  {
    id: id(),
    orgId: text("org_id")
      .notNull()
      .references(() => organizations.id, { onDelete: "cascade" }),
    connectedBy: text("connected_by").references(() => users.id, { onDelete: "set null" }),
    provider: text("provider", { enum: PROVIDER_IDS }).notNull(),
    address: text("address").notNull(),
    // The provider's stable account id (Google and demo `sub`; Microsoft `tid:oid`): the
    // address is an email claim a tenant administrator can change, so it only labels the row.
    // Null on rows connected before subjects were recorded: the next connect of the same
    // address adopts such a row once and fills this in.
    providerSubject: text("provider_subject"),
    tenant: text("tenant"),
    status: mailboxStatusEnum("status").notNull(),
    grantedScopes: text("granted_scopes").array().notNull().default([]),
    accessTokenEnc: text("access_token_enc"),
    accessTokenExpiresAt: timestamp("access_token_expires_at", { withTimezone: true }),
    refreshTokenEnc: text("refresh_token_enc"),
    keyId: text("key_id"),
    lastRefreshAt: timestamp("last_refresh_at", { withTimezone: true }),
    lastUsedAt: timestamp("last_used_at", { withTimezone: true }),
    /** When the periodic health check last tested the connection (it claims a mailbox by this). */
    healthCheckedAt: timestamp("health_checked_at", { withTimezone: true }),
    lastErrorCode: text("last_error_code"),
    lastErrorCause: text("last_error_cause"),
    failureCount: integer("failure_count").notNull().default(0),
    retryAfter: timestamp("retry_after", { withTimezone: true }),
    /**
     * The provider's daily sending quota was reached (Microsoft 554 5.2.0, Gmail 550 5.4.5):
     * "limit reached until" this time. The status stays `connected`; sends before it are
     * refused with 429 and queued messages wait for it (lib/mail/quota.ts).
     */
    limitedUntil: timestamp("limited_until", { withTimezone: true }),
    /**
     * When a revoke of this row last reached the provider and may have ended the grant there
     * (not `kept_in_use`, not a revoke with no token to send): where that ends every grant of
     * the account (Google), a connect redeemed before it is refused (isAccountRevokedSince).
     */
    providerRevokedAt: timestamp("provider_revoked_at", { withTimezone: true }),
    createdAt: createdAt(),
    updatedAt: timestamp("updated_at", { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    uniqueIndex("mailboxes_org_provider_address_idx").on(t.orgId, t.provider, t.address),
    uniqueIndex("mailboxes_org_provider_subject_idx").on(t.orgId, t.provider, t.providerSubject),
  ],
);

/**
 * One row per SMTP connection a process holds for a mailbox (ARCHITECTURE.md, "Connection
 * caps"): `slot` is below the provider's cap, so the primary key bounds the connections of a
 * mailbox across every process. A row whose lease ran out belongs to nobody (its process died)
 * and is taken over by the next claim.
 */
export const smtpConnectionSlots = pgTable(
  "smtp_connection_slots",
  {
    mailboxId: text("mailbox_id")
      .notNull()
      .references(() => mailboxes.id, { onDelete: "cascade" }),
    slot: integer("slot").notNull(),
    /** The holding process (a random id per process start). */
    holder: text("holder").notNull(),
    leaseUntil: timestamp("lease_until", { withTimezone: true }).notNull(),
  },
  (t) => [
    primaryKey({ columns: [t.mailboxId, t.slot] }),
    index("smtp_connection_slots_holder_idx").on(t.holder),
  ],
);

export const oauthTransactions = pgTable(
  "oauth_transactions",
  {
    id: id(),
    state: text("state").notNull(),
    codeVerifierEnc: text("code_verifier_enc").notNull(),
    nonce: text("nonce").notNull(),
    provider: text("provider", { enum: PROVIDER_IDS }).notNull(),
    requestedScopes: text("requested_scopes").notNull(),
    redirectUri: text("redirect_uri").notNull(),
    /** Set for a reconnect: the callback may only renew this mailbox. */
    mailboxId: text("mailbox_id").references(() => mailboxes.id, { onDelete: "cascade" }),
    userId: text("user_id")
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    orgId: text("org_id")
      .notNull()
      .references(() => organizations.id, { onDelete: "cascade" }),
    expiresAt: timestamp("expires_at", { withTimezone: true }).notNull(),
    usedAt: timestamp("used_at", { withTimezone: true }),
    /**
     * Where revoking ends every grant of the account (Google): when the callback revoked the
     * grant this transaction's code was redeemed for, because it did not keep it, and the
     * account's subject. A connect of that account redeemed before then may hold a dead grant
     * and is refused (isAccountRevokedSince), as after a revoke of one of its mailboxes.
     */
    grantRevokedAt: timestamp("grant_revoked_at", { withTimezone: true }),
    grantSubject: text("grant_subject"),
    createdAt: createdAt(),
  },
  (t) => [uniqueIndex("oauth_transactions_state_idx").on(t.state)],
);

// Dashboard notices (e.g. a mailbox needs reconnecting); userId null = every admin of the org.
export const notices = pgTable(
  "notices",
  {
    id: id(),
    orgId: text("org_id")
      .notNull()
      .references(() => organizations.id, { onDelete: "cascade" }),
    userId: text("user_id").references(() => users.id, { onDelete: "cascade" }),
    mailboxId: text("mailbox_id").references(() => mailboxes.id, { onDelete: "cascade" }),
    kind: text("kind").notNull(),
    title: text("title").notNull(),
    body: text("body").notNull(),
    createdAt: createdAt(),
    readAt: timestamp("read_at", { withTimezone: true }),
  },
  (t) => [index("notices_org_idx").on(t.orgId, t.createdAt)],
);

// ---- Sending ----

export const apiKeys = pgTable(
  "api_keys",
  {
    id: id(),
    orgId: text("org_id")
      .notNull()
      .references(() => organizations.id, { onDelete: "cascade" }),
    name: text("name").notNull(),
    prefix: text("prefix").notNull(),
    secretHash: text("secret_hash").notNull(),
    // null = every mailbox of the organisation
    allowedMailboxIds: text("allowed_mailbox_ids").array(),
    createdBy: text("created_by").references(() => users.id, { onDelete: "set null" }),
    createdAt: createdAt(),
    lastUsedAt: timestamp("last_used_at", { withTimezone: true }),
    revokedAt: timestamp("revoked_at", { withTimezone: true }),
    /** After this the key is refused exactly like a revoked one; null never expires. */
    expiresAt: timestamp("expires_at", { withTimezone: true }),
  },
  (t) => [
    uniqueIndex("api_keys_prefix_idx").on(t.prefix),
    // The API keys page's keyset order (newest first).
    index("api_keys_org_created_idx").on(t.orgId, t.createdAt, t.id),
  ],
);

// `queued`, `retrying` and `cancelled` are API messages sent with `Prefer: respond-async`
// (lib/mail/queued.ts): they wait in this table, their body sealed, until their final outcome.
export const messageStatusEnum = pgEnum("message_status", [
  "sending",
  "sent",
  "failed",
  "queued",
  "retrying",
  "cancelled",
]);

export const messages = pgTable(
  "messages",
  {
    id: id(),
    orgId: text("org_id")
      .notNull()
      .references(() => organizations.id, { onDelete: "cascade" }),
    mailboxId: text("mailbox_id").references(() => mailboxes.id, { onDelete: "set null" }),
    senderType: text("sender_type").notNull(),
    senderId: text("sender_id").notNull(),
    recipients: jsonb("recipients")
      .$type<{ to: string[]; cc: string[]; bcc: string[] }>()
      .notNull(),
    recipientCount: integer("recipient_count").notNull(),
    subject: text("subject").notNull(),
    status: messageStatusEnum("status").notNull(),
    smtpResponse: text("smtp_response"),
    providerMessageId: text("provider_message_id"),
    errorCode: text("error_code"),
    idempotencyKey: text("idempotency_key"),
    requestHash: text("request_hash"),
    createdAt: createdAt(),
    sentAt: timestamp("sent_at", { withTimezone: true }),
    /** When retention emptied the recipients and replaced the subject. */
    personalRemovedAt: timestamp("personal_removed_at", { withTimezone: true }),
    // ---- Queued messages only (null for synchronous sends) ----
    /** The validated request, sealed (lib/crypto); deleted at the final outcome. */
    bodySealed: text("body_sealed"),
    /** Delivery attempts started (claims). */
    attempts: integer("attempts").notNull().default(0),
    /** When the next attempt may start; set only while queued or retrying. */
    nextAttemptAt: timestamp("next_attempt_at", { withTimezone: true }),
    /** Past this, a transient failure is final. */
    deadlineAt: timestamp("deadline_at", { withTimezone: true }),
    /** The current attempt's id, committed (with the Message-ID) before any SMTP traffic. */
    claimId: text("claim_id"),
    /** The plain cause of the last failure (retrying) or of the final one (failed, cancelled). */
    lastError: text("last_error"),
  },
  (t) => [
    uniqueIndex("messages_idempotency_idx").on(t.senderType, t.senderId, t.idempotencyKey),
    index("messages_org_time_idx").on(t.orgId, t.createdAt),
    // The rows retention has still to empty: each daily run reads only these.
    index("messages_personal_kept_idx")
      .on(t.orgId, t.createdAt)
      .where(sql`${t.personalRemovedAt} is null`),
    index("messages_mailbox_time_idx").on(t.mailboxId, t.createdAt),
    // The queue: each mailbox's messages waiting for an attempt, and interrupted attempts.
    // (Set only while so: the enum's new values cannot appear in the migration that adds them.)
    index("messages_waiting_idx")
      .on(t.mailboxId, t.nextAttemptAt)
      .where(sql`${t.nextAttemptAt} is not null`),
  ],
);

/**
 * Each attempt's lease, written with the claim that makes a message `sending`: past it while
 * the message is still `sending`, the attempt was interrupted, and the row is reconciled, never
 * resent blind. Kept apart from `messages` so that an attempt's final update changes no indexed
 * column there (PostgreSQL then updates the row in place, without new entries in its seven
 * indexes: ARCHITECTURE.md, "Queued messages"). A lease outlives its attempt until it lapses,
 * when the sweep deletes it.
 */
export const messageClaims = pgTable(
  "message_claims",
  {
    // No foreign key: its check would cost every claim a lookup, and a lease whose message is
    // gone (erased) is only deleted by the sweep with the others.
    messageId: text("message_id").primaryKey(),
    expiresAt: timestamp("expires_at", { withTimezone: true }).notNull(),
  },
  (t) => [index("message_claims_expires_idx").on(t.expiresAt)],
);

/**
 * Each mailbox's pace across processes (lib/mail/pace.ts): the earliest time the next queued
 * message may start. Taking a slot moves it on by one interval in one statement.
 */
export const mailboxPace = pgTable("mailbox_pace", {
  mailboxId: text("mailbox_id")
    .primaryKey()
    .references(() => mailboxes.id, { onDelete: "cascade" }),
  nextAt: timestamp("next_at", { withTimezone: true }).notNull(),
});
// ---- Signed webhooks (lib/webhooks): endpoints, one delivery per event and endpoint, attempts ----

// The signing secret is sealed (lib/crypto, AAD = table, column, row). After a rotation the
// previous secret keeps signing beside the new one until `previous_secret_expires_at`.
export const webhookEndpoints = pgTable(
  "webhook_endpoints",
  {
    id: id(),
    orgId: text("org_id")
      .notNull()
      .references(() => organizations.id, { onDelete: "cascade" }),
    url: text("url").notNull(),
    description: text("description").notNull().default(""),
    // Event types (lib/webhooks/event-types.ts) this endpoint receives.
    events: text("events").array().notNull(),
    enabled: boolean("enabled").notNull().default(true),
    /**
     * Why it was turned off: "person", "gone" (the receiver answered 410) or "backlog" (more
     * deliveries waiting than lib/webhooks/breaker.ts allows).
     */
    disabledReason: text("disabled_reason"),
    secret: text("secret").notNull(),
    previousSecret: text("previous_secret"),
    previousSecretExpiresAt: timestamp("previous_secret_expires_at", { withTimezone: true }),
    createdBy: text("created_by").references(() => users.id, { onDelete: "set null" }),
    createdAt: createdAt(),
    updatedAt: timestamp("updated_at", { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [index("webhook_endpoints_org_idx").on(t.orgId, t.createdAt)],
);

// `cancelled`: never to be sent, because its endpoint was turned off (by a person or Mailwarden).
export const webhookDeliveryStatusEnum = pgEnum("webhook_delivery_status", [
  "pending",
  "sending",
  "delivered",
  "failed",
  "cancelled",
]);

// One event for one endpoint. `id` is the Standard Webhooks `webhook-id` (the same on every
// attempt); `body` is the exact JSON that is signed and sent.
export const webhookDeliveries = pgTable(
  "webhook_deliveries",
  {
    id: text("id").primaryKey(),
    orgId: text("org_id")
      .notNull()
      .references(() => organizations.id, { onDelete: "cascade" }),
    endpointId: text("endpoint_id")
      .notNull()
      .references(() => webhookEndpoints.id, { onDelete: "cascade" }),
    eventType: text("event_type").notNull(),
    body: text("body").notNull(),
    status: webhookDeliveryStatusEnum("status").notNull().default("pending"),
    attempts: integer("attempts").notNull().default(0),
    nextAttemptAt: timestamp("next_attempt_at", { withTimezone: true }),
    /** When a job for the due attempt was last put on the queue (the sweep's "lost job" test). */
    enqueuedAt: timestamp("enqueued_at", { withTimezone: true }),
    /** While `sending`: the claim lapses at this time (a process that died mid-attempt). */
    leaseUntil: timestamp("lease_until", { withTimezone: true }),
    deadlineAt: timestamp("deadline_at", { withTimezone: true }).notNull(),
    createdAt: createdAt(),
    finishedAt: timestamp("finished_at", { withTimezone: true }),
  },
  (t) => [
    index("webhook_deliveries_endpoint_idx").on(t.endpointId, t.createdAt),
    index("webhook_deliveries_due_idx")
      .on(t.nextAttemptAt)
      .where(sql`${t.status} in ('pending', 'sending')`),
    // An endpoint's waiting deliveries, counted at each claim (lib/webhooks/breaker.ts) without
    // reading its finished history.
    index("webhook_deliveries_waiting_idx")
      .on(t.endpointId)
      .where(sql`${t.status} in ('pending', 'sending')`),
  ],
);

// Each attempt's answer as the receiver gave it (status, a short excerpt) or why none came.
export const webhookAttempts = pgTable(
  "webhook_attempts",
  {
    id: id(),
    deliveryId: text("delivery_id")
      .notNull()
      .references(() => webhookDeliveries.id, { onDelete: "cascade" }),
    attemptedAt: timestamp("attempted_at", { withTimezone: true }).notNull().defaultNow(),
    statusCode: integer("status_code"),
    /** Why no answer counted: refused_address, timeout, network, redirect, … */
    error: text("error"),
    responseExcerpt: text("response_excerpt"),
    durationMs: integer("duration_ms").notNull(),
    nextRetryAt: timestamp("next_retry_at", { withTimezone: true }),
  },
  (t) => [index("webhook_attempts_delivery_idx").on(t.deliveryId, t.attemptedAt)],
);

// ---- Relations ----

export const membershipsRelations = relations(memberships, ({ one }) => ({
  organization: one(organizations, { fields: [memberships.orgId], references: [organizations.id] }),
  user: one(users, { fields: [memberships.userId], references: [users.id] }),
}));

// ---- Types ----

export type Role = (typeof roleEnum.enumValues)[number];
export type AuditOutcome = (typeof auditOutcomeEnum.enumValues)[number];
export type User = typeof users.$inferSelect;
export type Organization = typeof organizations.$inferSelect;
export type Membership = typeof memberships.$inferSelect;
export type AuditEvent = typeof auditEvents.$inferSelect;
export type MailboxStatus = (typeof mailboxStatusEnum.enumValues)[number];
export type ProviderId = (typeof PROVIDER_IDS)[number];
export type Mailbox = typeof mailboxes.$inferSelect;
export type OAuthTransaction = typeof oauthTransactions.$inferSelect;
export type Job = typeof jobs.$inferSelect;
export type JobStatus = (typeof jobStatusEnum.enumValues)[number];
export type ApiKey = typeof apiKeys.$inferSelect;
export type Message = typeof messages.$inferSelect;
export type DataRequest = typeof dataRequests.$inferSelect;
export type WebhookEndpoint = typeof webhookEndpoints.$inferSelect;
export type WebhookDelivery = typeof webhookDeliveries.$inferSelect;
