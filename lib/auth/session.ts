import "server-only";
import { cookies, headers } from "next/headers";
import { forbidden, redirect } from "next/navigation";
import { cache } from "react";
import { getDb } from "@/db";
import { getActiveMembership } from "@/db/queries/organizations";
import type { Role } from "@/db/schema";
import { writeAuditEvent } from "@/lib/audit/write";
import { auth, sessionCookieName } from "./config";
import { isOperator } from "./operators";
import { requestInfo } from "./request";
import { hasPermission, type Permission } from "./roles";

export type SessionContext = {
  user: { id: string; email: string | null; name: string | null };
  orgId: string;
  orgName: string;
  role: Role;
};

/**
 * The one place that turns a request into session → person → active organisation → role. The
 * session's chosen organisation counts only while it is still a membership; otherwise the oldest
 * membership is used, so removal from an organisation takes effect on the next request.
 */
export const getSessionContext = cache(async (): Promise<SessionContext | null> => {
  const session = await auth();
  const userId = session?.user?.id;
  if (!userId) return null;
  const membership = await getActiveMembership({
    db: await getDb(),
    userId,
    preferredOrgId: session.activeOrgId,
  });
  if (!membership) return null;
  return {
    user: { id: userId, email: session.user?.email ?? null, name: session.user?.name ?? null },
    ...membership,
  };
});

/** `operator`: a view only the deployment's operators may have (OPERATOR_EMAILS). */
export async function auditDenied(
  ctx: SessionContext,
  resource: string,
  permission: Permission | "operator",
  reason?: "cross_site",
) {
  const info = await requestInfo();
  await writeAuditEvent(await getDb(), {
    orgId: ctx.orgId,
    actor: { type: "user", id: ctx.user.id, label: ctx.user.email },
    action: "access.denied",
    target: { type: "route", id: resource },
    outcome: "denied",
    request: info,
    metadata: { role: ctx.role, permission, ...(reason ? { reason } : {}) },
  });
}

/**
 * Downloads that record or count something (exports, receipts) are GET links, and the session
 * cookie (SameSite=Lax) rides along on a top-level GET from another site: a link there could
 * start an export in the person's name, adding requests to the log and spending their export
 * limit. So they answer only what the browser says came from our own pages or was typed in
 * (`Sec-Fetch-Site` same-origin or none; clients that send no such header are let through).
 */
export async function crossSiteRefusal(
  ctx: SessionContext,
  resource: string,
  permission: Permission,
): Promise<Response | null> {
  const site = (await headers()).get("sec-fetch-site");
  if (site === null || site === "same-origin" || site === "none") return null;
  await auditDenied(ctx, resource, permission, "cross_site");
  return new Response(
    "Start downloads from Mailwarden's own pages: open the page and use its link.\n",
    {
      status: 403,
      headers: { "content-type": "text/plain; charset=utf-8", "cache-control": "no-store" },
    },
  );
}

/** For pages: sends the signed-out to sign-in and answers 403 to a role without the permission. */
export async function requirePermission(
  permission: Permission,
  resource: string,
): Promise<SessionContext> {
  const ctx = await getSessionContext();
  if (!ctx) redirect("/sign-in");
  if (!hasPermission(ctx.role, permission)) {
    await auditDenied(ctx, resource, permission);
    forbidden();
  }
  return ctx;
}

/**
 * Which log the activity pages and the export show: the organisation's, or the system events
 * (those of no organisation) when `view` is "system" and the caller is an operator. A
 * non-operator asking for the system view is refused, audited (they do not silently get their
 * own organisation's log instead).
 */
export async function activityView(
  ctx: SessionContext,
  view: unknown,
  resource: string,
): Promise<"organization" | "system" | "refused"> {
  if (view !== "system") return "organization";
  if (await isOperator({ db: await getDb(), userId: ctx.user.id })) return "system";
  await auditDenied(ctx, `${resource}?view=system`, "operator");
  return "refused";
}

/** The current request's session token, for changes to this one session (never sent anywhere). */
export async function currentSessionToken(): Promise<string | null> {
  return (await cookies()).get(sessionCookieName())?.value ?? null;
}
