import Link from "next/link";
import { PAGE_PARAMS, type PageParamNames } from "@/lib/paging";

function href(path: string, params: Record<string, string>): string {
  const search = new URLSearchParams(params).toString();
  return search ? `${path}?${search}` : path;
}

/**
 * The links between keyset pages of one list (lib/paging.ts), and the message when the URL's
 * position could not be read and the first page is shown instead. `keep` carries the URL's
 * other parameters (another list's position on the same page).
 */
export function Pager({
  path,
  page,
  error = null,
  names = PAGE_PARAMS,
  keep = {},
  label = "Pages",
}: {
  path: string;
  page: { newer: string | null; older: string | null };
  error?: string | null;
  names?: PageParamNames;
  keep?: Record<string, string>;
  label?: string;
}) {
  if (!error && !page.newer && !page.older) return null;
  return (
    <>
      {error && (
        <p role="alert" className="mt-4 text-red-800 text-sm">
          This page position cannot be used ({error}); showing the first page.
        </p>
      )}
      <nav aria-label={label} className="mt-4 flex flex-wrap justify-between gap-4 text-sm">
        <span className="flex gap-4">
          {page.newer && (
            <>
              <Link href={href(path, keep)} className="underline">
                « First page
              </Link>
              <Link
                href={href(path, { ...keep, [names.before]: page.newer })}
                className="underline"
              >
                ← Newer
              </Link>
            </>
          )}
        </span>
        {page.older && (
          <Link href={href(path, { ...keep, [names.after]: page.older })} className="underline">
            Older →
          </Link>
        )}
      </nav>
    </>
  );
}
