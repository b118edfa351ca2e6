import type { ReactNode } from "react";
import { cn } from "@/lib/utils";

const TONES = {
  neutral: "bg-slate-100 text-slate-700 ring-slate-300",
  good: "bg-green-50 text-green-800 ring-green-600/30",
  warn: "bg-amber-50 text-amber-800 ring-amber-600/30",
  bad: "bg-red-50 text-red-800 ring-red-600/30",
} as const;

export function Badge({
  tone = "neutral",
  children,
}: {
  tone?: keyof typeof TONES;
  children: ReactNode;
}) {
  return (
    <span
      className={cn(
        "inline-flex items-center rounded px-2 py-0.5 font-medium text-xs ring-1 ring-inset",
        TONES[tone],
      )}
    >
      {children}
    </span>
  );
}
