import { PageHeader } from "@/components/page-header";
import { Card } from "./card";

function Bar({ className }: { className: string }) {
  return <div className={`animate-pulse rounded bg-slate-200 ${className}`} />;
}

/**
 * The shell of a list page while its data loads: the real title, so the page does not jump, and
 * grey rows where the list will be. Screen readers hear one "Loading" instead of the bars.
 */
export function ListSkeleton({
  title,
  description,
  rows = 5,
}: {
  title: string;
  description?: string;
  rows?: number;
}) {
  return (
    <>
      <PageHeader title={title} description={description} />
      <Card aria-busy="true">
        <p className="sr-only" role="status">
          Loading {title.toLowerCase()}…
        </p>
        <div aria-hidden="true" className="space-y-3">
          <Bar className="h-4 w-1/3" />
          {Array.from({ length: rows }, (_, i) => (
            <Bar key={i} className="h-8 w-full" />
          ))}
        </div>
      </Card>
    </>
  );
}
