import type { ReactNode } from "react";
import { cn } from "@/lib/utils";

/**
 * What an empty list shows: what is missing and what the person can do next. Callers pass only
 * the next steps the person's role allows, so nobody is pointed at a page that refuses them.
 */
export function EmptyState({
  title,
  children,
  action,
  className,
}: {
  title: string;
  /** The next step, in words. */
  children?: ReactNode;
  /** A link or button for that step. */
  action?: ReactNode;
  className?: string;
}) {
  return (
    <div
      className={cn(
        "rounded-lg border border-slate-300 border-dashed bg-white px-5 py-8 text-center",
        className,
      )}
    >
      <h2 className="font-medium">{title}</h2>
      {children && <div className="mx-auto mt-1 max-w-prose text-slate-600 text-sm">{children}</div>}
      {action && <div className="mt-4 flex flex-wrap justify-center gap-2">{action}</div>}
    </div>
  );
}
