import { getDb } from "@/db";
import { getUserProfile, listMembershipsWithOrg } from "@/db/queries/privacy";
import { downloadAccessCheck } from "@/lib/auth/download-access";
import { currentSessionToken } from "@/lib/auth/session";
import { exportStream, subjectExport } from "@/lib/privacy/export";
import { downloadHeaders, routeContext } from "@/lib/privacy/http";
import { recordOwnExport } from "@/lib/privacy/requests";
import { downloadRefusal } from "@/lib/ratelimit/runtime";

export const dynamic = "force-dynamic";

/**
 * A person's own export: their account and what every organisation they belong to holds about
 * them (each is theirs to see as a member), recorded as a request in each of those organisations.
 */
export async function GET() {
  const { ctx, refused } = await routeContext("view", "/profile/export");
  if (!ctx) return refused;
  const limited = await downloadRefusal(ctx.user.id);
  if (limited) return limited;
  const db = await getDb();
  const profile = await getUserProfile({ db, userId: ctx.user.id });
  const email = profile?.email ?? ctx.user.email;
  if (!email)
    return Response.json({ error: "Your account has no email address." }, { status: 400 });
  const orgs = await listMembershipsWithOrg({ db, userId: ctx.user.id });
  await recordOwnExport(
    { userId: ctx.user.id, email, label: ctx.user.email },
    orgs.map((o) => o.orgId),
    ctx.request,
  );
  // Each organisation's part is read only while the person is still its member and signed in:
  // an organisation that removes them meanwhile ends the download (failed), audited in its log.
  const check = downloadAccessCheck(ctx, {
    permission: "view",
    resource: "/profile/export",
    request: ctx.request,
    sessionToken: await currentSessionToken(),
  });
  const chunks = subjectExport(db, { kind: "self", userId: ctx.user.id, email }, check);
  return new Response(exportStream(chunks), {
    headers: downloadHeaders(`mailwarden-my-data-${new Date().toISOString().slice(0, 10)}.json`),
  });
}
