import "server-only";
import { getDb } from "@/db";
import { findMembership } from "@/db/queries/organizations";
import { isSessionLive } from "@/db/queries/sessions";
import type { RequestInfo } from "@/lib/audit/events";
import { writeAuditEvent } from "@/lib/audit/write";
import { isOperator } from "./operators";
import { hasPermission, type Permission } from "./roles";

/**
 * Thrown into a streamed download whose caller lost what allowed it: the stream errors, so the
 * client's download fails (a chunked response without its end) instead of ending as a file that
 * looks complete.
 */
class DownloadAccessLostError extends Error {
  constructor() {
    super("The membership or role that allowed this download ended while it was streaming.");
    this.name = "DownloadAccessLostError";
  }
}

type DownloadAccessCheck = (orgId?: string) => Promise<void>;

/**
 * A streamed download's re-check, run before each batch it reads from the database: the
 * caller's session must still be there (not signed out, nor ended by "sign everyone out"), and
 * the caller a member of the organisation (`orgId`, else the download's own) with a role that
 * has `permission` and, for the system log, an operator. A download is checked when it starts
 * and may then stream for minutes; without this a person removed from the organisation, demoted
 * out of the role or signed out would go on receiving its data. The first failed check is
 * audited (`access.denied`, reason `access_lost` or `session_ended`, in that organisation's log)
 * and every check from then on throws DownloadAccessLostError.
 */
export function downloadAccessCheck(
  caller: { orgId: string; user: { id: string; email: string | null } },
  {
    permission,
    resource,
    request,
    sessionToken,
    operator = false,
  }: {
    permission: Permission;
    resource: string;
    request: RequestInfo | null;
    /** The session the download was started in (null: none to check). */
    sessionToken: string | null;
    operator?: boolean;
  },
): DownloadAccessCheck {
  let isLost = false;
  return async (orgId = caller.orgId) => {
    if (isLost) throw new DownloadAccessLostError();
    const db = await getDb();
    const userId = caller.user.id;
    const isSignedIn = sessionToken === null || (await isSessionLive({ db, sessionToken, userId }));
    const membership = await findMembership({ db, orgId, userId });
    const allowed =
      isSignedIn &&
      membership !== null &&
      hasPermission(membership.role, permission) &&
      (!operator || (await isOperator({ db, userId: caller.user.id })));
    if (allowed) return;
    isLost = true;
    await writeAuditEvent(db, {
      orgId,
      actor: { type: "user", id: caller.user.id, label: caller.user.email },
      action: "access.denied",
      target: { type: "route", id: resource },
      outcome: "denied",
      request,
      metadata: {
        role: membership?.role ?? null,
        permission: operator ? "operator" : permission,
        reason: isSignedIn ? "access_lost" : "session_ended",
      },
    });
    throw new DownloadAccessLostError();
  };
}
