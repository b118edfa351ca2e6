import Link from "next/link";
import { PageHeader } from "@/components/page-header";
import { Badge } from "@/components/ui/badge";
import { Card } from "@/components/ui/card";
import { EmptyState } from "@/components/ui/empty-state";
import { Table } from "@/components/ui/table";
import { memberContextOf } from "@/lib/auth/action";
import { requirePermission } from "@/lib/auth/session";
import { formatDateTime } from "@/lib/utils";
import { endpointStateLabel } from "@/lib/webhooks/breaker";
import { listEndpoints, MAX_WEBHOOK_ENDPOINTS } from "@/lib/webhooks/endpoints";
import { CreateEndpointForm } from "./forms";

export const metadata = { title: "Webhooks" };

export default async function WebhooksPage() {
  const session = await requirePermission("manageWebhooks", "/webhooks");
  const endpoints = await listEndpoints(await memberContextOf(session));
  return (
    <>
      <PageHeader
        title="Webhooks"
        description="Mailwarden tells your services how their messages went and when a mailbox needs someone, by POSTing signed JSON to the URLs you register here (Standard Webhooks: webhook-id, webhook-timestamp and webhook-signature headers)."
      />
      <Card className="mb-6 max-w-2xl">
        <h2 className="mb-3 font-medium">Add an endpoint</h2>
        <CreateEndpointForm />
      </Card>
      <Card>
        <h2 className="mb-3 font-medium">
          Endpoints{" "}
          <span className="font-normal text-slate-500 text-sm">
            ({endpoints.length} of at most {MAX_WEBHOOK_ENDPOINTS})
          </span>
        </h2>
        {endpoints.length === 0 ? (
          <EmptyState title="No endpoint yet">
            Add the URL of a service that should hear about sent and failed messages or mailbox
            problems. Each endpoint gets its own signing secret.
          </EmptyState>
        ) : (
          <Table columns={["URL", "Events", "Status", "Created"]}>
            {endpoints.map((e) => (
              <tr key={e.id}>
                <td className="break-all">
                  <Link className="text-brand-700 underline" href={`/webhooks/${e.id}`}>
                    {e.url}
                  </Link>
                  {e.description && <div className="text-slate-500 text-xs">{e.description}</div>}
                </td>
                <td className="text-xs">{e.events.join(", ")}</td>
                <td>
                  <Badge tone={e.enabled ? "good" : "neutral"}>{endpointStateLabel(e)}</Badge>
                </td>
                <td>{formatDateTime(e.createdAt)}</td>
              </tr>
            ))}
          </Table>
        )}
      </Card>
    </>
  );
}
