import "server-only";
import { hasPermission, type Permission } from "@/lib/auth/roles";
import { auditDenied, getSessionContext, type SessionContext } from "@/lib/auth/session";

/** A route handler's session check: the context, or the answer to send instead (audited 403). */
export async function routeContext(
  permission: Permission,
  resource: string,
): Promise<{ ctx: SessionContext; refused: null } | { ctx: null; refused: Response }> {
  const ctx = await getSessionContext();
  if (!ctx) {
    return { ctx: null, refused: Response.json({ error: "Sign in first." }, { status: 401 }) };
  }
  if (!hasPermission(ctx.role, permission)) {
    await auditDenied(ctx, resource, permission);
    const refused = Response.json({ error: "Your role does not allow this." }, { status: 403 });
    return { ctx: null, refused };
  }
  return { ctx, refused: null };
}

export function downloadHeaders(filename: string, contentType = "application/json") {
  return {
    "content-type": `${contentType}; charset=utf-8`,
    "content-disposition": `attachment; filename="${filename}"`,
    "cache-control": "no-store",
    "x-content-type-options": "nosniff",
  };
}
