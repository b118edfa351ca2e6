import type { ReactNode } from "react";

/**
 * A plain data table; an empty column title is an actions column, named for screen readers.
 * The wrapper scrolls a wide table inside its card; it is positioned so that the screen-reader
 * label (absolutely positioned) is clipped with the table instead of widening the page.
 */
export function Table({ columns, children }: { columns: string[]; children: ReactNode }) {
  return (
    <div className="relative overflow-x-auto">
      <table className="w-full text-left text-sm [&_td]:py-2 [&_td]:pr-4 [&_th]:pr-4">
        <thead className="text-slate-500">
          <tr>
            {columns.map((title) => (
              <th key={title || "actions"} className="py-2 font-medium">
                {title || <span className="sr-only">Actions</span>}
              </th>
            ))}
          </tr>
        </thead>
        <tbody className="[&_tr]:border-slate-100 [&_tr]:border-t [&_tr]:align-top">
          {children}
        </tbody>
      </table>
    </div>
  );
}
