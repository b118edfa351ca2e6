import { PageHeader } from "@/components/page-header";
import { Pager } from "@/components/pager";
import { Badge } from "@/components/ui/badge";
import { Card } from "@/components/ui/card";
import { EmptyState } from "@/components/ui/empty-state";
import { Table } from "@/components/ui/table";
import { getDb } from "@/db";
import { listMailboxes } from "@/db/queries/mailboxes";
import { requirePermission } from "@/lib/auth/session";
import { env } from "@/lib/env";
import { listApiKeysForOrg } from "@/lib/mail/api-keys";
import { parsePageParams } from "@/lib/paging";
import { formatDateTime } from "@/lib/utils";
import { CreateApiKeyForm, EditKeyMailboxesForm, RevokeApiKeyButton } from "./forms";

export const metadata = { title: "API keys" };

export default async function ApiKeysPage({
  searchParams,
}: {
  searchParams: Promise<Record<string, string | string[] | undefined>>;
}) {
  const ctx = await requirePermission("manageApiKeys", "/api-keys");
  const position = parsePageParams(await searchParams);
  const [page, mailboxes] = await Promise.all([
    listApiKeysForOrg({ orgId: ctx.orgId, page: position.request }),
    listMailboxes({ db: await getDb(), orgId: ctx.orgId }),
  ]);
  const keys = page.rows;
  const addressOf = new Map(mailboxes.map((m) => [m.id, m.address]));
  const choices = mailboxes.map((m) => ({ id: m.id, address: m.address }));
  const now = new Date();
  return (
    <>
      <PageHeader
        title="API keys"
        description="Your services send with POST /api/v1/messages and Authorization: Bearer <key>. Only a hash of each key is stored."
      />
      <Card className="mb-6 max-w-2xl">
        <h2 className="mb-3 font-medium">Create a key</h2>
        <CreateApiKeyForm mailboxes={choices} />
      </Card>
      <Card>
        <h2 className="mb-3 font-medium">Keys</h2>
        {keys.length === 0 ? (
          <EmptyState title="No key yet">
            Create one above for each service that sends mail, so that each can be revoked on its
            own.
          </EmptyState>
        ) : (
          <Table columns={["Name", "Prefix", "Mailboxes", "Last used", "Expires", "Status", ""]}>
            {keys.map((k) => (
              <tr key={k.id}>
                <td>{k.name}</td>
                <td className="font-mono text-xs">{k.prefix}</td>
                <td className="text-xs">
                  {k.allowedMailboxIds === null
                    ? "All mailboxes"
                    : k.allowedMailboxIds
                        .map((id) => addressOf.get(id) ?? "removed mailbox")
                        .join(", ")}
                  {!k.revokedAt && (
                    <EditKeyMailboxesForm
                      keyId={k.id}
                      name={k.name}
                      allowed={k.allowedMailboxIds}
                      mailboxes={choices}
                    />
                  )}
                </td>
                <td>{formatDateTime(k.lastUsedAt)}</td>
                <td>{k.expiresAt ? formatDateTime(k.expiresAt) : "Never"}</td>
                <td>
                  {k.revokedAt ? (
                    <Badge tone="neutral">Revoked</Badge>
                  ) : k.expiresAt && k.expiresAt <= now ? (
                    <Badge tone="neutral">Expired</Badge>
                  ) : (
                    <Badge tone="good">Active</Badge>
                  )}
                </td>
                <td>{!k.revokedAt && <RevokeApiKeyButton keyId={k.id} name={k.name} />}</td>
              </tr>
            ))}
          </Table>
        )}
        <Pager path="/api-keys" page={page} error={position.error} label="Pages of keys" />
        <p className="mt-4 text-slate-500 text-xs">
          Example:{" "}
          <code className="break-all">
            curl -X POST {env().APP_URL}/api/v1/messages -H &quot;Authorization: Bearer $KEY&quot;
            -H &quot;Content-Type: application/json&quot; -d &apos;{"{"}
            &quot;mailbox&quot;:&quot;you@example.com&quot;,&quot;to&quot;:[&quot;a@example.com&quot;],&quot;subject&quot;:&quot;Hi&quot;,&quot;text&quot;:&quot;Hello&quot;
            {"}"}&apos;
          </code>
        </p>
      </Card>
    </>
  );
}
