import { getDb } from "@/db";
import { findUserByEmail } from "@/db/queries/privacy";
import { downloadAccessCheck } from "@/lib/auth/download-access";
import { currentSessionToken } from "@/lib/auth/session";
import { exportStream, subjectExport } from "@/lib/privacy/export";
import { downloadHeaders, routeContext } from "@/lib/privacy/http";
import { recordExportDownload } from "@/lib/privacy/requests";
import { downloadRefusal } from "@/lib/ratelimit/runtime";

export const dynamic = "force-dynamic";

/** An officer's export of what the organisation holds about a request's subject, streamed. */
export async function GET(
  _request: Request,
  { params }: { params: Promise<{ requestId: string }> },
) {
  const { ctx, refused } = await routeContext("handlePrivacy", "/privacy/[requestId]/export");
  if (!ctx) return refused;
  const limited = await downloadRefusal(ctx.user.id);
  if (limited) return limited;
  const { requestId } = await params;
  const request = await recordExportDownload(ctx, requestId);
  if (!request) return Response.json({ error: "No such export request." }, { status: 404 });
  const db = await getDb();
  const user = await findUserByEmail({ db, email: request.subjectEmail });
  // Signed out, removed from the organisation or no longer a role that handles requests: the rest
  // is not sent.
  const check = downloadAccessCheck(ctx, {
    permission: "handlePrivacy",
    resource: "/privacy/[requestId]/export",
    request: ctx.request,
    sessionToken: await currentSessionToken(),
  });
  const chunks = subjectExport(
    db,
    {
      kind: "organization",
      orgId: ctx.orgId,
      orgName: ctx.orgName,
      email: request.subjectEmail,
      userId: user?.id ?? null,
    },
    check,
  );
  return new Response(exportStream(chunks), {
    headers: downloadHeaders(`mailwarden-export-${request.id}.json`),
  });
}
