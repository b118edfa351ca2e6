import { PageHeader } from "@/components/page-header";
import { Card } from "@/components/ui/card";
import { Table } from "@/components/ui/table";
import { getDb } from "@/db";
import { getUserProfile, listMembershipsWithOrg } from "@/db/queries/privacy";
import { ROLE_LABELS } from "@/lib/auth/roles";
import { requirePermission } from "@/lib/auth/session";
import { formatDateTime } from "@/lib/utils";

export const metadata = { title: "Your data" };

export default async function ProfilePage() {
  const ctx = await requirePermission("view", "/profile");
  const db = await getDb();
  const [profile, orgs] = await Promise.all([
    getUserProfile({ db, userId: ctx.user.id }),
    listMembershipsWithOrg({ db, userId: ctx.user.id }),
  ]);
  return (
    <>
      <PageHeader
        title="Your data"
        description="Your account, and a copy of everything Mailwarden holds about you."
      />
      <Card className="mb-6">
        <h2 className="mb-2 font-medium">Account</h2>
        <dl className="grid grid-cols-[max-content_1fr] gap-x-4 gap-y-1 text-sm">
          <dt className="text-slate-500">Name</dt>
          <dd>{profile?.name ?? "—"}</dd>
          <dt className="text-slate-500">Email</dt>
          <dd>{profile?.email ?? "—"}</dd>
          <dt className="text-slate-500">Since</dt>
          <dd>{formatDateTime(profile?.createdAt)}</dd>
        </dl>
      </Card>
      <Card className="mb-6">
        <h2 className="mb-2 font-medium">Organisations</h2>
        <Table columns={["Organisation", "Role", "Since"]}>
          {orgs.map((o) => (
            <tr key={o.orgId}>
              <td>{o.orgName}</td>
              <td>{ROLE_LABELS[o.role]}</td>
              <td>{formatDateTime(o.since)}</td>
            </tr>
          ))}
        </Table>
      </Card>
      <Card>
        <h2 className="mb-2 font-medium">Download your data</h2>
        <p className="mb-3 text-sm">
          One JSON document: your account, sessions (never their tokens), and in each organisation
          you belong to the mailboxes you connected, the API keys you created, the messages you sent
          or that were addressed to you, and the activity log events about you. Each
          organisation&apos;s compliance officers see that you downloaded it.
        </p>
        <a
          className="inline-block rounded-md bg-brand-600 px-4 py-2 font-medium text-sm text-white"
          href="/profile/export"
          download
        >
          Download my data
        </a>
      </Card>
    </>
  );
}
