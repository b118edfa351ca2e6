import { PageHeader } from "@/components/page-header";
import { Pager } from "@/components/pager";
import { Badge } from "@/components/ui/badge";
import { Card } from "@/components/ui/card";
import { EmptyState } from "@/components/ui/empty-state";
import { Table } from "@/components/ui/table";
import { getDb } from "@/db";
import { listInvitationsForEmail } from "@/db/queries/organizations";
import { getUserEmail } from "@/db/queries/users";
import { ROLE_LABELS } from "@/lib/auth/roles";
import { requirePermission } from "@/lib/auth/session";
import { parsePageParams } from "@/lib/paging";
import { formatDateTime } from "@/lib/utils";
import { InvitationAnswer } from "./forms";

export const metadata = { title: "Invitations" };

export default async function InvitationsPage({
  searchParams,
}: {
  searchParams: Promise<Record<string, string | string[] | undefined>>;
}) {
  const params = await searchParams;
  const declined = params.declined;
  const position = parsePageParams(params);
  const ctx = await requirePermission("view", "/invitations");
  const db = await getDb();
  const user = await getUserEmail({ db, userId: ctx.user.id });
  // Invitations are shown only to an address the sign-in provider confirmed: anyone could claim
  // an unconfirmed one, and the list names other organisations.
  const isVerified = Boolean(user?.email && user.emailVerified);
  const page =
    isVerified && user?.email
      ? await listInvitationsForEmail({ db, email: user.email, page: position.request })
      : { rows: [], newer: null, older: null };
  const invitations = page.rows;
  return (
    <>
      <PageHeader
        title="Invitations"
        description="Organisations that invited you. You join one only when you accept; declining tells them no."
      />
      {declined && (
        <p role="status" className="mb-4 text-green-800 text-sm">
          Invitation declined. The organisation that sent it can see that you said no.
        </p>
      )}
      <Card>
        {!isVerified ? (
          <EmptyState title="Invitations are not shown">
            Your sign-in provider did not confirm that you own {ctx.user.email ?? "your address"},
            so invitations sent to it are not shown. Sign in with a provider that confirms it.
          </EmptyState>
        ) : invitations.length === 0 ? (
          <EmptyState title="No invitations">
            No invitations are waiting for {ctx.user.email}. When someone adds you to their
            organisation, it appears here for you to accept or decline.
          </EmptyState>
        ) : (
          <Table columns={["Organisation", "Role", "Invited by", "Sent", ""]}>
            {invitations.map((i) => (
              <tr key={i.id}>
                <td>{i.orgName}</td>
                <td>
                  <Badge>{ROLE_LABELS[i.role]}</Badge>
                </td>
                <td>{i.invitedByEmail ?? "someone no longer here"}</td>
                <td>{formatDateTime(i.createdAt)}</td>
                <td>
                  <InvitationAnswer invitationId={i.id} orgName={i.orgName} />
                </td>
              </tr>
            ))}
          </Table>
        )}
        <Pager
          path="/invitations"
          page={page}
          error={position.error}
          label="Pages of invitations"
        />
      </Card>
    </>
  );
}
