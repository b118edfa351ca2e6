import { PageHeader } from "@/components/page-header";
import { Badge } from "@/components/ui/badge";
import { Card } from "@/components/ui/card";
import { Table } from "@/components/ui/table";
import { getDb } from "@/db";
import { listInvitations, listMembers } from "@/db/queries/organizations";
import { ROLE_LABELS } from "@/lib/auth/roles";
import { requirePermission } from "@/lib/auth/session";
import { formatDateTime } from "@/lib/utils";
import { AddMemberForm, MemberRowActions, RevokeInvitationButton } from "./forms";

export const metadata = { title: "Members" };

export default async function MembersPage() {
  const ctx = await requirePermission("manageMembers", "/members");
  const db = await getDb();
  const [members, invitations] = await Promise.all([
    listMembers({ db, orgId: ctx.orgId }),
    listInvitations({ db, orgId: ctx.orgId }),
  ]);
  return (
    <>
      <PageHeader
        title="Members"
        description="Owners and admins manage people and mailboxes; senders send; compliance officers read the activity log and handle data requests."
      />
      <Card className="mb-6">
        <h2 className="mb-3 font-medium">Add a person</h2>
        <AddMemberForm />
        <p className="mt-2 text-slate-500 text-xs">
          They join when they first sign in with this email address through a provider that verifies
          it.
        </p>
      </Card>
      <Card>
        <h2 className="mb-3 font-medium">People</h2>
        <Table columns={["Person", "Role", "Since", ""]}>
          {members.map((m) => (
            <tr key={m.userId}>
              <td>
                {m.email}
                {m.userId === ctx.user.id && <span className="ml-1 text-slate-500">(you)</span>}
              </td>
              <td>
                <Badge>{ROLE_LABELS[m.role]}</Badge>
              </td>
              <td>{formatDateTime(m.since)}</td>
              <td>
                <MemberRowActions userId={m.userId} email={m.email ?? m.userId} role={m.role} />
              </td>
            </tr>
          ))}
          {invitations.map((i) => (
            <tr key={i.id}>
              <td>{i.email}</td>
              <td>
                <Badge tone="warn">{ROLE_LABELS[i.role]} · not signed in yet</Badge>
              </td>
              <td>{formatDateTime(i.createdAt)}</td>
              <td>
                <RevokeInvitationButton invitationId={i.id} email={i.email} />
              </td>
            </tr>
          ))}
        </Table>
      </Card>
    </>
  );
}
