"use client";

import { createContext, type ReactNode, useContext } from "react";
import { PAGE_ORG_FIELD } from "@/lib/auth/page-org";

// The organisation the signed-in layout was rendered for. Every form sends it back, so that a
// form left open in a tab cannot act on the organisation another tab switched to since.
const PageOrgContext = createContext<string | null>(null);

export function PageOrgProvider({ orgId, children }: { orgId: string; children: ReactNode }) {
  return <PageOrgContext.Provider value={orgId}>{children}</PageOrgContext.Provider>;
}

/** The hidden field naming the page's organisation; SubmitButton renders it in every form. */
export function PageOrgField() {
  const orgId = useContext(PageOrgContext);
  if (orgId === null) return null;
  return <input type="hidden" name={PAGE_ORG_FIELD} value={orgId} />;
}
