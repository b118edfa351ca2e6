import { getDb } from "@/db";
import { getDataRequest } from "@/db/queries/privacy";
import { writeAuditEvent } from "@/lib/audit/write";
import { requestInfo } from "@/lib/auth/request";
import { downloadHeaders, routeContext } from "@/lib/privacy/http";

export const dynamic = "force-dynamic";

/** A completed request's receipt as JSON; each download is recorded. */
export async function GET(
  _request: Request,
  { params }: { params: Promise<{ requestId: string }> },
) {
  const { ctx, refused } = await routeContext("handlePrivacy", "/privacy/[requestId]/receipt");
  if (!ctx) return refused;
  const { requestId } = await params;
  const db = await getDb();
  const request = await getDataRequest({ db, orgId: ctx.orgId, requestId });
  if (!request?.receipt) return Response.json({ error: "No such receipt." }, { status: 404 });
  await writeAuditEvent(db, {
    orgId: ctx.orgId,
    actor: { type: "user", id: ctx.user.id, label: ctx.user.email },
    action: "privacy.receipt_downloaded",
    target: { type: "data_request", id: request.id },
    outcome: "success",
    request: await requestInfo(),
    metadata: { kind: request.kind },
  });
  const body = {
    schema: "mailwarden.data-request-receipt",
    schemaVersion: 1,
    request: {
      id: request.id,
      kind: request.kind,
      subject: request.subjectEmail,
      receivedAt: request.receivedAt,
      dueAt: request.dueAt,
      status: request.status,
      completedAt: request.completedAt,
    },
    receipt: request.receipt,
  };
  return new Response(`${JSON.stringify(body, null, 2)}\n`, {
    headers: downloadHeaders(`mailwarden-receipt-${request.id}.json`),
  });
}
