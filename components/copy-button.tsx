"use client";

import { useState } from "react";
import { Button } from "@/components/ui/button";

/** Copies `value` to the clipboard; the result is announced to screen readers. */
export function CopyButton({ value, label }: { value: string; label: string }) {
  const [status, setStatus] = useState<"" | "Copied" | "Copy failed: select the text and copy it">(
    "",
  );
  return (
    <span className="inline-flex items-center gap-2">
      <Button
        type="button"
        variant="secondary"
        aria-label={label}
        onClick={async () => {
          try {
            await navigator.clipboard.writeText(value);
            setStatus("Copied");
          } catch {
            setStatus("Copy failed: select the text and copy it");
          }
        }}
      >
        Copy
      </Button>
      <span role="status" className="text-slate-600 text-xs">
        {status}
      </span>
    </span>
  );
}
