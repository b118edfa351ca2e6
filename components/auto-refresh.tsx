"use client";

import { useRouter } from "next/navigation";
import { useEffect } from "react";

// Re-renders the server page every interval while mounted: the page mounts it only while a
// job is running, so the progress it renders stays current without a client-side store.
export function AutoRefresh({ intervalMs = 1000 }: { intervalMs?: number }) {
  const router = useRouter();
  useEffect(() => {
    const timer = setInterval(() => router.refresh(), intervalMs);
    return () => clearInterval(timer);
  }, [router, intervalMs]);
  return null;
}
