import type { ReactNode } from "react";
import { requirePermission } from "@/lib/auth/session";

// The page checks this permission too, but inside the loading.tsx boundary: by then the response
// has begun streaming with status 200. Checked here, above the boundary, a refusal is a real 403.
export default async function Layout({ children }: { children: ReactNode }) {
  await requirePermission("manageMembers", "/members");
  return children;
}
