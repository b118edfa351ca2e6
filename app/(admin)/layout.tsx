import type { ReactNode } from "react";
import { SignedInShell } from "@/components/signed-in-shell";

export const dynamic = "force-dynamic";

export default function Layout({ children }: { children: ReactNode }) {
  return <SignedInShell>{children}</SignedInShell>;
}
