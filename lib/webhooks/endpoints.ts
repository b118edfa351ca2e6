import "server-only";
import { randomUUID } from "node:crypto";
import { type DbOrTx, getDb } from "@/db";
import {
  countWebhookEndpoints,
  deleteWebhookEndpoint as deleteEndpointRow,
  getWebhookEndpoint,
  getWebhookEndpointSecrets,
  insertDelivery,
  insertWebhookEndpoint,
  listWebhookEndpoints,
  updateWebhookEndpoint as updateEndpointRow,
  type WebhookEndpointSummary,
} from "@/db/queries/webhooks";
import { writeAuditEvent } from "@/lib/audit/write";
import type { CallContext } from "@/lib/auth/context";
import { hasPermission } from "@/lib/auth/roles";
import { env } from "@/lib/env";
import { UserFacingError } from "@/lib/errors";
import { enforceRateLimit } from "@/lib/ratelimit/runtime";
import { type DnsOptions, resolveWebhookTarget, WebhookTargetError } from "./address";
import { turnOffEndpoint } from "./breaker";
import { dispatchWebhookDeliveries } from "./dispatch";
import { webhookBody } from "./emit";
import { WEBHOOK_TEST_EVENT, type WebhookEventType } from "./event-types";
import { openWebhookSecret, sealWebhookSecret } from "./secrets";
import { generateWebhookSecret } from "./signing";

// An organisation's webhook endpoints, as owners and admins manage them (manageWebhooks). Every
// change is audited; the audit event names the URL's host only (a path or query may itself hold
// a receiver's token). The secret leaves this module only in the answer to a creation or a
// rotation, once.

export class WebhookInputError extends UserFacingError {
  constructor(field: string, message: string) {
    super(message, { field });
    this.name = "WebhookInputError";
  }
}

export class WebhookEndpointNotFoundError extends UserFacingError {
  constructor() {
    super("No such webhook endpoint in this organisation.");
    this.name = "WebhookEndpointNotFoundError";
  }
}

/** Not a UserFacingError: the action wrapper has refused the role before this can happen. */
export class WebhookForbiddenError extends Error {
  constructor() {
    super("Only owners and admins manage webhooks.");
    this.name = "WebhookForbiddenError";
  }
}

function assertManager(ctx: CallContext): void {
  if (
    ctx.actor.type !== "user" ||
    ctx.role === null ||
    !hasPermission(ctx.role, "manageWebhooks")
  ) {
    throw new WebhookForbiddenError();
  }
}

export type EndpointInput = { url: string; description: string; events: WebhookEventType[] };

/** `dns` is for tests: where and how long the URL's host is resolved (lib/webhooks/address.ts). */
export type SaveOptions = { dns?: DnsOptions };

// URLs aimed where a webhook may not go (an internal address, a service's port): recorded, as
// someone may be probing. A typo or a host without DNS is the person's own business.
const AUDITED_URL_REFUSALS: ReadonlySet<WebhookTargetError["code"]> = new Set([
  "forbidden_address",
  "port",
]);

/**
 * The URL checked as a delivery will check it (resolved, every address judged). Each check asks
 * DNS about a host of the caller's choosing, so saves are rate limited (`webhookEndpointSave`,
 * per person and per organisation) before it; a refusal is audited as every limit's is.
 */
async function checkUrl(ctx: CallContext, url: string, { dns }: SaveOptions): Promise<string> {
  await enforceRateLimit("webhookEndpointSave", [`user:${ctx.actor.id}`, `org:${ctx.orgId}`]);
  try {
    const target = await resolveWebhookTarget(url.trim(), { allowPrivate: env().isDemo, dns });
    return target.url.toString();
  } catch (error) {
    if (!(error instanceof WebhookTargetError)) throw error;
    if (AUDITED_URL_REFUSALS.has(error.code)) {
      await auditRefused(ctx, await getDb(), { reason: error.code, host: hostOf(url.trim()) });
    }
    throw new WebhookInputError("url", error.message);
  }
}

function checkEvents(events: WebhookEventType[]): WebhookEventType[] {
  if (events.length === 0) throw new WebhookInputError("events", "Choose at least one event.");
  return [...new Set(events)].sort();
}

const hostOf = (url: string) => new URL(url).host;

export async function listEndpoints(ctx: CallContext): Promise<WebhookEndpointSummary[]> {
  assertManager(ctx);
  return listWebhookEndpoints({ db: await getDb(), orgId: ctx.orgId });
}

export async function getEndpoint(ctx: CallContext, endpointId: string) {
  assertManager(ctx);
  const row = await getWebhookEndpoint({ db: await getDb(), orgId: ctx.orgId, endpointId });
  if (!row) throw new WebhookEndpointNotFoundError();
  return row;
}

/**
 * Endpoints an organisation may have. Every event makes one delivery per endpoint and each
 * attempt can hold a delivery worker for seconds, so the number bounds what one organisation
 * (sign-up is open) can put on the shared queue per event.
 */
export const MAX_WEBHOOK_ENDPOINTS = 10;

const TOO_MANY_ENDPOINTS = `This organisation already has ${MAX_WEBHOOK_ENDPOINTS} webhook endpoints, the most it may have: delete one to add another.`;

/** Audits a refused save, with `db` (the save's transaction, if any). */
async function auditRefused(ctx: CallContext, db: DbOrTx, metadata: Record<string, unknown>) {
  await writeAuditEvent(db, {
    orgId: ctx.orgId,
    actor: ctx.actor,
    action: "webhook.endpoint_refused",
    target: null,
    outcome: "denied",
    request: ctx.request,
    metadata,
  });
}

/** Audits the refusal of an endpoint past the limit. */
function auditTooMany(ctx: CallContext, db: DbOrTx, url: string | null) {
  return auditRefused(ctx, db, {
    reason: "endpoint_limit",
    limit: MAX_WEBHOOK_ENDPOINTS,
    ...(url ? { host: hostOf(url) } : {}),
  });
}

/** Creates an endpoint; `secret` is the only time the signing secret leaves the database. */
export async function createEndpoint(
  ctx: CallContext,
  input: EndpointInput,
  options: SaveOptions = {},
): Promise<{ endpoint: WebhookEndpointSummary; secret: string }> {
  assertManager(ctx);
  const events = checkEvents(input.events);
  const db = await getDb();
  // Refused before the URL is resolved when already full; the count that decides is the one
  // under the lock, at the insert.
  if ((await countWebhookEndpoints({ db, orgId: ctx.orgId })) >= MAX_WEBHOOK_ENDPOINTS) {
    await auditTooMany(ctx, db, null);
    throw new WebhookInputError("url", TOO_MANY_ENDPOINTS);
  }
  const url = await checkUrl(ctx, input.url, options);
  const id = randomUUID();
  const secret = generateWebhookSecret();
  const added = await db.transaction(async (tx) => {
    const inserted = await insertWebhookEndpoint({
      db: tx,
      max: MAX_WEBHOOK_ENDPOINTS,
      values: {
        id,
        orgId: ctx.orgId,
        url,
        description: input.description,
        events,
        secret: sealWebhookSecret(id, "secret", secret),
        createdBy: ctx.actor.id,
      },
    });
    if (!inserted) {
      await auditTooMany(ctx, tx, url);
      return false;
    }
    await writeAuditEvent(tx, {
      orgId: ctx.orgId,
      actor: ctx.actor,
      action: "webhook.endpoint_created",
      target: { type: "webhook_endpoint", id },
      outcome: "success",
      request: ctx.request,
      metadata: { host: hostOf(url), events },
    });
    return true;
  });
  if (!added) throw new WebhookInputError("url", TOO_MANY_ENDPOINTS);
  return { endpoint: await getEndpoint(ctx, id), secret };
}

export async function updateEndpoint(
  ctx: CallContext,
  endpointId: string,
  input: EndpointInput & { enabled: boolean },
  options: SaveOptions = {},
): Promise<WebhookEndpointSummary> {
  assertManager(ctx);
  await getEndpoint(ctx, endpointId);
  const events = checkEvents(input.events);
  const url = await checkUrl(ctx, input.url, options);
  const db = await getDb();
  return db.transaction(async (tx) => {
    const row = await audited(tx, ctx, endpointId, {
      url,
      description: input.description,
      events,
      // Off goes the one way an endpoint is turned off, which cancels what waits for it and
      // keeps the reason of one that is off already.
      ...(input.enabled ? { enabled: true, disabledReason: null } : {}),
    });
    if (input.enabled) return row;
    const { turnedOff } = await turnOff(tx, ctx, endpointId);
    return turnedOff ?? row;
  });
}

/**
 * On: new events are delivered from now on. Off: what waits for the endpoint is cancelled too,
 * as when Mailwarden turns it off (./breaker.ts), and turning it on again does not bring those
 * back. `cancelled` says how many.
 */
export async function setEndpointEnabled(
  ctx: CallContext,
  endpointId: string,
  enabled: boolean,
): Promise<{ endpoint: WebhookEndpointSummary; cancelled: number }> {
  assertManager(ctx);
  const db = await getDb();
  if (enabled) {
    const endpoint = await db.transaction((tx) =>
      audited(tx, ctx, endpointId, { enabled: true, disabledReason: null }),
    );
    return { endpoint, cancelled: 0 };
  }
  const { turnedOff, cancelled } = await turnOff(db, ctx, endpointId);
  return { endpoint: turnedOff ?? (await getEndpoint(ctx, endpointId)), cancelled };
}

/** The person's "off", through the breaker's path (audited there, with the count). */
function turnOff(db: DbOrTx, ctx: CallContext, endpointId: string) {
  return turnOffEndpoint(db, {
    orgId: ctx.orgId,
    endpointId,
    reason: "person",
    by: { actor: ctx.actor, request: ctx.request },
  });
}

/** Changes the endpoint with `db` (a transaction) and audits the change. */
async function audited(
  db: DbOrTx,
  ctx: CallContext,
  endpointId: string,
  set: Parameters<typeof updateEndpointRow>[0]["set"],
): Promise<WebhookEndpointSummary> {
  const row = await updateEndpointRow({ db, orgId: ctx.orgId, endpointId, set });
  if (!row) throw new WebhookEndpointNotFoundError();
  await writeAuditEvent(db, {
    orgId: ctx.orgId,
    actor: ctx.actor,
    action: "webhook.endpoint_updated",
    target: { type: "webhook_endpoint", id: endpointId },
    outcome: "success",
    request: ctx.request,
    metadata: {
      host: hostOf(row.url),
      events: row.events,
      enabled: row.enabled,
      changed: Object.keys(set).sort(),
    },
  });
  return row;
}

export async function deleteEndpoint(ctx: CallContext, endpointId: string): Promise<void> {
  assertManager(ctx);
  const db = await getDb();
  await db.transaction(async (tx) => {
    const row = await deleteEndpointRow({ db: tx, orgId: ctx.orgId, endpointId });
    if (!row) throw new WebhookEndpointNotFoundError();
    await writeAuditEvent(tx, {
      orgId: ctx.orgId,
      actor: ctx.actor,
      action: "webhook.endpoint_deleted",
      target: { type: "webhook_endpoint", id: endpointId },
      outcome: "success",
      request: ctx.request,
      metadata: { host: hostOf(row.url), events: row.events },
    });
  });
}

/**
 * A new secret signs from now on; the previous one keeps signing beside it (a second `v1,`
 * signature in the same header) for WEBHOOK_SECRET_OVERLAP_HOURS, so a receiver can switch
 * without missing a delivery. A second rotation within that time drops the oldest.
 */
export async function rotateEndpointSecret(
  ctx: CallContext,
  endpointId: string,
): Promise<{ secret: string; previousValidUntil: Date | null }> {
  assertManager(ctx);
  const db = await getDb();
  const secret = generateWebhookSecret();
  const overlapMs = env().WEBHOOK_SECRET_OVERLAP_HOURS * 3_600_000;
  const previousValidUntil = overlapMs > 0 ? new Date(Date.now() + overlapMs) : null;
  await db.transaction(async (tx) => {
    const current = await getWebhookEndpointSecretsFor(tx, ctx.orgId, endpointId);
    if (!current) throw new WebhookEndpointNotFoundError();
    // The sealed value is bound to its column, so the old secret is re-sealed for its new one.
    const old = openWebhookSecret(endpointId, "secret", current.secret);
    await updateEndpointRow({
      db: tx,
      orgId: ctx.orgId,
      endpointId,
      set: {
        secret: sealWebhookSecret(endpointId, "secret", secret),
        previousSecret: previousValidUntil
          ? sealWebhookSecret(endpointId, "previous_secret", old)
          : null,
        previousSecretExpiresAt: previousValidUntil,
      },
    });
    await writeAuditEvent(tx, {
      orgId: ctx.orgId,
      actor: ctx.actor,
      action: "webhook.secret_rotated",
      target: { type: "webhook_endpoint", id: endpointId },
      outcome: "success",
      request: ctx.request,
      metadata: {
        host: hostOf(current.url),
        previousValidUntil: previousValidUntil?.toISOString() ?? null,
      },
    });
  });
  return { secret, previousValidUntil };
}

async function getWebhookEndpointSecretsFor(db: DbOrTx, orgId: string, endpointId: string) {
  const row = await getWebhookEndpointSecrets({ db, endpointId });
  return row && row.orgId === orgId ? row : null;
}

/**
 * A `webhook.test` delivery to one endpoint, signed and retried like any other. Rate limited per
 * person and per organisation: each press makes Mailwarden send a request to a URL of the
 * caller's choosing.
 */
export async function sendTestDelivery(ctx: CallContext, endpointId: string): Promise<string> {
  assertManager(ctx);
  const endpoint = await getEndpoint(ctx, endpointId);
  if (!endpoint.enabled) {
    throw new UserFacingError("This endpoint is turned off: turn it on to send a test.");
  }
  await enforceRateLimit("webhookTest", [`user:${ctx.actor.id}`, `org:${ctx.orgId}`]);
  const id = `msg_${randomUUID().replaceAll("-", "")}`;
  const db = await getDb();
  await db.transaction(async (tx) => {
    await insertDelivery({
      db: tx,
      values: {
        id,
        orgId: ctx.orgId,
        endpointId,
        eventType: WEBHOOK_TEST_EVENT,
        body: webhookBody(WEBHOOK_TEST_EVENT, {
          endpointId,
          message: "A test delivery from Mailwarden.",
        }),
        nextAttemptAt: new Date(),
        deadlineAt: new Date(Date.now() + env().WEBHOOK_DELIVERY_DEADLINE_HOURS * 3_600_000),
      },
    });
    await writeAuditEvent(tx, {
      orgId: ctx.orgId,
      actor: ctx.actor,
      action: "webhook.test_sent",
      target: { type: "webhook_endpoint", id: endpointId },
      outcome: "success",
      request: ctx.request,
      metadata: { host: hostOf(endpoint.url), deliveryId: id },
    });
  });
  await dispatchWebhookDeliveries(ctx.orgId, [id]);
  return id;
}
