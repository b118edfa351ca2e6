"use client";

import Link from "next/link";
import { usePathname } from "next/navigation";
import { type KeyboardEvent, useRef, useState } from "react";
import type { NavItem } from "@/lib/nav";
import { cn } from "@/lib/utils";

/**
 * The main navigation: a sidebar on wide screens, behind a menu button on phones. The menu is
 * open only for the page it was opened on, so any navigation closes it.
 */
export function MainNav({ items }: { items: NavItem[] }) {
  const pathname = usePathname();
  const [openOn, setOpenOn] = useState<string | null>(null);
  const open = openOn === pathname;
  const button = useRef<HTMLButtonElement>(null);

  function onKeyDown(event: KeyboardEvent) {
    if (event.key !== "Escape" || !open) return;
    setOpenOn(null);
    button.current?.focus();
  }

  return (
    // biome-ignore lint/a11y/noStaticElementInteractions: Escape bubbles up from the button and links
    <div onKeyDown={onKeyDown} className="md:w-48 md:shrink-0">
      <button
        ref={button}
        type="button"
        aria-expanded={open}
        aria-controls="main-nav"
        onClick={() => setOpenOn(open ? null : pathname)}
        className="flex w-full items-center gap-2 rounded-md border border-slate-300 bg-white px-3 py-2 font-medium text-sm md:hidden"
      >
        <svg aria-hidden="true" viewBox="0 0 20 20" className="h-4 w-4" fill="currentColor">
          <path d="M3 5h14v2H3zm0 4h14v2H3zm0 4h14v2H3z" />
        </svg>
        Menu
      </button>
      <nav
        id="main-nav"
        aria-label="Main"
        className={cn("mt-2 md:mt-0 md:block", open ? "block" : "hidden")}
      >
        <ul className="space-y-1 rounded-md border border-slate-200 bg-white p-2 md:border-0 md:bg-transparent md:p-0">
          {items.map((item) => (
            <li key={item.href}>
              <Link
                href={item.href}
                aria-current={item.href === pathname ? "page" : undefined}
                onClick={() => setOpenOn(null)}
                className={cn(
                  "block rounded px-2 py-1.5 text-sm hover:bg-slate-200",
                  item.href === pathname && "bg-slate-200 font-medium",
                )}
              >
                {item.label}
                {item.count ? (
                  <span className="ml-2 rounded-full bg-brand-600 px-1.5 text-white text-xs">
                    {item.count}
                  </span>
                ) : null}
              </Link>
            </li>
          ))}
        </ul>
      </nav>
    </div>
  );
}
