import { formatDateTime } from "@/lib/utils";
import { PageOrgField } from "./page-org";

type Notice = { id: string; title: string; body: string; createdAt: Date };

export function NoticeList({
  notices,
  dismiss,
}: {
  notices: Notice[];
  dismiss: (formData: FormData) => Promise<void>;
}) {
  if (notices.length === 0) return null;
  return (
    <section aria-label="Notices" className="mb-6 space-y-2">
      {notices.map((n) => (
        <div
          key={n.id}
          role="status"
          className="rounded-md border border-amber-300 bg-amber-50 p-3 text-sm"
        >
          <div className="flex items-start justify-between gap-4">
            <div>
              <p className="font-medium text-amber-950">{n.title}</p>
              <p className="mt-1 whitespace-pre-line text-amber-900">{n.body}</p>
              <p className="mt-1 text-amber-800 text-xs">{formatDateTime(n.createdAt)}</p>
            </div>
            <form action={dismiss}>
              <input type="hidden" name="noticeId" value={n.id} />
              <PageOrgField />
              <button type="submit" className="text-amber-900 text-xs underline">
                Dismiss
              </button>
            </form>
          </div>
        </div>
      ))}
    </section>
  );
}
