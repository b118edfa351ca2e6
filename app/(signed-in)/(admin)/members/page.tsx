import { PageHeader } from "@/components/page-header";
import { Badge } from "@/components/ui/badge";
import { Card } from "@/components/ui/card";
import { Table } from "@/components/ui/table";
import { getDb } from "@/db";
import { listInvitations, listMembers } from "@/db/queries/organizations";
import { invitableRoles, refuseRemoval, roleChoices } from "@/lib/auth/owner-rules";
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
  const ownerCount = members.filter((m) => m.role === "owner").length;
  const factsFor = (m: (typeof members)[number]) => ({
    actorRole: ctx.role,
    targetRole: m.role,
    isSelf: m.userId === ctx.user.id,
    ownerCount,
  });
  return (
    <>
      <PageHeader
        title="Members"
        description="Owners and admins manage people and mailboxes; senders send; compliance officers read the activity log and handle data requests."
      />
      <Card className="mb-6">
        <h2 className="mb-3 font-medium">Add a person</h2>
        <AddMemberForm roles={invitableRoles(ctx.role)} />
        <p className="mt-2 text-slate-500 text-xs">
          They see the invitation when they sign in with this email address through a provider that
          verifies it, and join only if they accept.
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
                <MemberRowActions
                  userId={m.userId}
                  email={m.email ?? m.userId}
                  role={m.role}
                  roleChoices={roleChoices(factsFor(m))}
                  canRemove={refuseRemoval(factsFor(m)) === null}
                  isSelf={m.userId === ctx.user.id}
                />
              </td>
            </tr>
          ))}
          {invitations.map((i) => (
            <tr key={i.id}>
              <td>{i.email}</td>
              <td>
                <Badge tone="warn">{ROLE_LABELS[i.role]} · invited, not accepted yet</Badge>
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
