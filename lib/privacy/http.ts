import "server-only";
import { type ActionContext, memberContextOf } from "@/lib/auth/action";
import { hasPermission, type Permission } from "@/lib/auth/roles";
import { auditDenied, crossSiteRefusal, getSessionContext } from "@/lib/auth/session";

/**
 * A download route's session check: the context, or the answer to send instead (audited 403,
 * a request from another site's page included: lib/auth/session.ts, crossSiteRefusal).
 */
export async function routeContext(
  permission: Permission,
  resource: string,
): Promise<{ ctx: ActionContext; refused: null } | { ctx: null; refused: Response }> {
  const session = await getSessionContext();
  if (!session) {
    return { ctx: null, refused: Response.json({ error: "Sign in first." }, { status: 401 }) };
  }
  if (!hasPermission(session.role, permission)) {
    await auditDenied(session, resource, permission);
    const refused = Response.json({ error: "Your role does not allow this." }, { status: 403 });
    return { ctx: null, refused };
  }
  const crossSite = await crossSiteRefusal(session, resource, permission);
  if (crossSite) return { ctx: null, refused: crossSite };
  return { ctx: await memberContextOf(session), refused: null };
}

export function downloadHeaders(filename: string, contentType = "application/json") {
  return {
    "content-type": `${contentType}; charset=utf-8`,
    "content-disposition": `attachment; filename="${filename}"`,
    "cache-control": "no-store",
    "x-content-type-options": "nosniff",
  };
}
