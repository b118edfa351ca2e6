import { getDb } from "@/db";
import { describeFilter, filterForAudit, parseActivityQuery } from "@/lib/audit/activity-filter";
import { exportStream } from "@/lib/audit/export";
import { writeAuditEvent } from "@/lib/audit/write";
import { downloadAccessCheck } from "@/lib/auth/download-access";
import { requestInfoFrom } from "@/lib/auth/request";
import { hasPermission } from "@/lib/auth/roles";
import {
  activityView,
  auditDenied,
  crossSiteRefusal,
  currentSessionToken,
  getSessionContext,
} from "@/lib/auth/session";
import { downloadRefusal } from "@/lib/ratelimit/runtime";

// GET /activity/export?format=csv|jsonl&<the activity page's filter>: the filtered log,
// streamed. A route handler gets no page guard, so it checks the session and role itself.

export const dynamic = "force-dynamic";
export const runtime = "nodejs";

function plain(status: number, text: string): Response {
  return new Response(`${text}\n`, {
    status,
    headers: { "content-type": "text/plain; charset=utf-8", "cache-control": "no-store" },
  });
}

export async function GET(request: Request): Promise<Response> {
  const ctx = await getSessionContext();
  if (!ctx) return plain(401, "Sign in to export the activity log.");
  if (!hasPermission(ctx.role, "readAudit")) {
    await auditDenied(ctx, "/activity/export", "readAudit");
    return plain(403, "Your role does not allow exporting the activity log.");
  }
  const crossSite = await crossSiteRefusal(ctx, "/activity/export", "readAudit");
  if (crossSite) return crossSite;
  const limited = await downloadRefusal(ctx.user.id);
  if (limited) return limited;
  const url = new URL(request.url);
  const format = url.searchParams.get("format") ?? "csv";
  if (format !== "csv" && format !== "jsonl") return plain(400, "format: must be csv or jsonl");
  const search = Object.fromEntries([...url.searchParams].filter(([key]) => key !== "format"));
  const parsed = parseActivityQuery(search);
  if (!parsed.ok) {
    return plain(400, parsed.errors.map((e) => `${e.field}: ${e.message}`).join("\n"));
  }
  const { query } = parsed;
  // A page position is not part of an export: it is always the whole filtered log.
  const view = await activityView(ctx, query.view, "/activity/export");
  if (view === "refused") {
    return plain(
      403,
      "The system view (events of no organisation) is for the operators of this deployment only. Nothing was exported.",
    );
  }
  const isSystem = view === "system";
  const chain = isSystem ? "" : ctx.orgId;
  const filterParams = describeFilter(query.params);
  const db = await getDb();
  const info = requestInfoFrom(request.headers);
  const stream = exportStream({
    db,
    chain,
    filter: query.filter,
    filterParams,
    format,
    // Signed out, removed from the organisation or no longer a role that reads the log: the rest
    // is not sent.
    check: downloadAccessCheck(ctx, {
      permission: "readAudit",
      resource: "/activity/export",
      request: info,
      sessionToken: await currentSessionToken(),
      operator: isSystem,
    }),
    onDone: async ({ mac: _mac, ...manifest }, complete) => {
      // The file's MAC is left out: it covers the typed filter, so it would confirm a guess of it.
      await writeAuditEvent(db, {
        orgId: isSystem ? null : ctx.orgId,
        actor: { type: "user", id: ctx.user.id, label: ctx.user.email },
        action: "audit.exported",
        outcome: complete ? "success" : "failure",
        request: info,
        // The file's manifest keeps the filter as typed (the officer's own copy); the log keeps
        // no searched-for text (filterForAudit).
        metadata: { complete, manifest: { ...manifest, filter: filterForAudit(manifest.filter) } },
      });
    },
  });
  const stamp = new Date().toISOString().slice(0, 19).replace(/[:T]/g, "-");
  return new Response(stream, {
    headers: {
      "content-type": format === "csv" ? "text/csv; charset=utf-8" : "application/x-ndjson",
      "content-disposition": `attachment; filename="activity-${stamp}.${format}"`,
      "cache-control": "no-store",
      "x-content-type-options": "nosniff",
    },
  });
}
