import type { ReactNode } from "react";

export function PageHeader({
  title,
  description,
  children,
}: {
  title: string;
  description?: string;
  children?: ReactNode;
}) {
  return (
    <div className="mb-6 flex flex-wrap items-start justify-between gap-4">
      <div>
        <h1 className="font-semibold text-2xl">{title}</h1>
        {description && <p className="mt-1 text-slate-600 text-sm">{description}</p>}
      </div>
      {children}
    </div>
  );
}
