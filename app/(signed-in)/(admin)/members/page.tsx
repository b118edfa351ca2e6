import { PageHeader } from "@/components/page-header";
import { Pager } from "@/components/pager";
import { Badge } from "@/components/ui/badge";
import { Card } from "@/components/ui/card";
import { Table } from "@/components/ui/table";
import { getDb } from "@/db";
import { countOwners, listInvitationsPage, listMembers } from "@/db/queries/organizations";
import { invitableRoles, refuseRemoval, roleChoices } from "@/lib/auth/owner-rules";
import { ROLE_LABELS } from "@/lib/auth/roles";
import { requirePermission } from "@/lib/auth/session";
import { PAGE_PARAMS, type PageParamNames, pageParam, parsePageParams } from "@/lib/paging";
import { formatDateTime } from "@/lib/utils";
import { AddMemberForm, MemberRowActions, RevokeInvitationButton } from "./forms";

export const metadata = { title: "Members" };

// The people and the waiting invitations page apart, each with its own position in the URL.
const INVITATION_PARAMS: PageParamNames = { after: "invitedAfter", before: "invitedBefore" };

export default async function MembersPage({
  searchParams,
}: {
  searchParams: Promise<Record<string, string | string[] | undefined>>;
}) {
  const ctx = await requirePermission("manageMembers", "/members");
  const params = await searchParams;
  const memberPosition = parsePageParams(params);
  const invitationPosition = parsePageParams(params, INVITATION_PARAMS);
  const db = await getDb();
  // The last-owner rules count every owner, not those on this page.
  const [memberPage, invitationPage, ownerCount] = await Promise.all([
    listMembers({ db, orgId: ctx.orgId, page: memberPosition.request }),
    listInvitationsPage({ db, orgId: ctx.orgId, page: invitationPosition.request }),
    countOwners({ db, orgId: ctx.orgId }),
  ]);
  const members = memberPage.rows;
  const invitations = invitationPage.rows;
  // Each pager keeps the other list's position, when it could be read.
  const keep = (names: PageParamNames, error: string | null) =>
    error !== null
      ? {}
      : Object.fromEntries(
          [names.after, names.before].flatMap((name) => {
            const value = pageParam(params, name);
            return value === undefined ? [] : [[name, value]];
          }),
        );
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
        </Table>
        <Pager
          path="/members"
          page={memberPage}
          error={memberPosition.error}
          keep={keep(INVITATION_PARAMS, invitationPosition.error)}
          label="Pages of people"
        />
      </Card>
      {(invitations.length > 0 || invitationPage.newer || invitationPosition.error) && (
        <Card className="mt-6">
          <h2 className="mb-3 font-medium">Waiting invitations</h2>
          <Table columns={["Person", "Role", "Sent", ""]}>
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
          <Pager
            path="/members"
            page={invitationPage}
            error={invitationPosition.error}
            names={INVITATION_PARAMS}
            keep={keep(PAGE_PARAMS, memberPosition.error)}
            label="Pages of invitations"
          />
        </Card>
      )}
    </>
  );
}
