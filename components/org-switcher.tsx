"use client";

import { useActionState } from "react";
import type { ActionResult } from "@/lib/auth/action";
import { ROLE_LABELS, type Role } from "@/lib/auth/roles";

export type OrgChoice = { orgId: string; orgName: string; role: Role };

type Props = {
  organizations: OrgChoice[];
  activeOrgId: string;
  activeOrgName: string;
  switchOrganization: (previous: ActionResult, formData: FormData) => Promise<ActionResult>;
};

/** The active organisation's name and, for people in several, a switcher to the others. */
export function OrgSwitcher({
  organizations,
  activeOrgId,
  activeOrgName,
  switchOrganization,
}: Props) {
  const [state, formAction] = useActionState(switchOrganization, {});
  return (
    <span className="inline-flex items-center gap-2">
      <span data-testid="current-org">{activeOrgName}</span>
      {organizations.length > 1 && (
        <form action={formAction} className="inline-flex items-center gap-1">
          <label className="sr-only" htmlFor="org-switcher">
            Switch organisation
          </label>
          <select
            key={activeOrgId}
            id="org-switcher"
            name="orgId"
            defaultValue={activeOrgId}
            className="rounded border border-slate-300 px-1 py-0.5 text-sm"
          >
            {organizations.map((o) => (
              <option key={o.orgId} value={o.orgId}>
                {o.orgName} ({ROLE_LABELS[o.role]})
              </option>
            ))}
          </select>
          <button type="submit" className="text-brand-600 underline">
            Switch
          </button>
          {state.message && !state.ok && (
            <span role="alert" className="text-red-700">
              {state.message}
            </span>
          )}
        </form>
      )}
    </span>
  );
}
