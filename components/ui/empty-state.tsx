import type { ReactNode } from "react";
import { cn } from "@/lib/utils";

/**
 * What an empty list shows: what is missing and what the person can do next. Callers pass only
 * the next steps the person's role allows, so nobody is pointed at a page that refuses them.
 * It has no frame of its own: it sits in the card the list would have filled.
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
    <div className={cn("px-2 py-6 text-center", className)}>
      <h2 className="font-medium">{title}</h2>
      {children && (
        <div className="mx-auto mt-1 max-w-prose text-slate-600 text-sm">{children}</div>
      )}
      {action && <div className="mt-4 flex flex-wrap justify-center gap-2">{action}</div>}
    </div>
  );
}
