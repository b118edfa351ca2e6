"use client";

import { useActionState } from "react";
import { SelectField, TextField } from "@/components/ui/field";
import { FormMessage } from "@/components/ui/form-message";
import { SubmitButton } from "@/components/ui/submit-button";
import type { Role } from "@/db/schema";
import type { ActionResult } from "@/lib/auth/action";
import { ROLE_LABELS } from "@/lib/auth/roles";
import {
  addMemberAction,
  changeRoleAction,
  removeMemberAction,
  revokeInvitationAction,
} from "./actions";

const initial: ActionResult = {};

function RoleOptions({ roles }: { roles: readonly Role[] }) {
  return roles.map((r) => (
    <option key={r} value={r}>
      {ROLE_LABELS[r]}
    </option>
  ));
}

/** Only the roles the person may give are offered; the server checks again. */
export function AddMemberForm({ roles }: { roles: Role[] }) {
  const [state, formAction] = useActionState(addMemberAction, initial);
  return (
    <form action={formAction} className="flex flex-wrap items-end gap-3" noValidate>
      <TextField
        label="Email"
        name="email"
        type="email"
        autoComplete="off"
        required
        errors={state.fieldErrors?.email}
        className="min-w-64 flex-1"
      />
      <SelectField label="Role" name="role" defaultValue="sender" errors={state.fieldErrors?.role}>
        <RoleOptions roles={roles} />
      </SelectField>
      <SubmitButton pendingText="Adding…">Add person</SubmitButton>
      <div className="w-full">
        <FormMessage state={state} />
      </div>
    </form>
  );
}

export function MemberRowActions({
  userId,
  email,
  role,
  roleChoices,
  canRemove,
  isSelf,
}: {
  userId: string;
  email: string;
  role: Role;
  /** Empty when the person may not change this member's role. */
  roleChoices: Role[];
  canRemove: boolean;
  isSelf: boolean;
}) {
  const [roleState, roleAction] = useActionState(changeRoleAction, initial);
  const [removeState, removeAction] = useActionState(removeMemberAction, initial);
  if (roleChoices.length === 0 && !canRemove) {
    return <span className="text-slate-500 text-xs">No changes you can make</span>;
  }
  return (
    <div className="flex flex-wrap items-center gap-2">
      {roleChoices.length > 0 && (
        <form action={roleAction} className="flex items-center gap-2">
          <input type="hidden" name="userId" value={userId} />
          <label className="sr-only" htmlFor={`role-${userId}`}>
            Role for {email}
          </label>
          <select
            id={`role-${userId}`}
            name="role"
            defaultValue={role}
            className="rounded border border-slate-300 px-2 py-1 text-sm"
          >
            <RoleOptions roles={roleChoices} />
          </select>
          <SubmitButton variant="secondary" pendingText="Saving…">
            Change role
          </SubmitButton>
        </form>
      )}
      {canRemove && (
        <form
          action={removeAction}
          onSubmit={(event) => {
            const question = isSelf
              ? "Leave this organisation? You lose access to it at once, and the API keys you created are revoked."
              : `Remove ${email} from this organisation? The API keys they created are revoked.`;
            if (!window.confirm(question)) event.preventDefault();
          }}
        >
          <input type="hidden" name="userId" value={userId} />
          <SubmitButton
            variant="danger"
            pendingText="Removing…"
            aria-label={isSelf ? "Leave this organisation" : `Remove ${email}`}
          >
            {isSelf ? "Leave" : "Remove"}
          </SubmitButton>
        </form>
      )}
      <FormMessage state={roleState.message ? roleState : removeState} />
    </div>
  );
}

export function RevokeInvitationButton({
  invitationId,
  email,
}: {
  invitationId: string;
  email: string;
}) {
  const [state, formAction] = useActionState(revokeInvitationAction, initial);
  return (
    <form action={formAction} className="flex items-center gap-2">
      <input type="hidden" name="invitationId" value={invitationId} />
      <SubmitButton variant="secondary" aria-label={`Withdraw invitation for ${email}`}>
        Withdraw
      </SubmitButton>
      <FormMessage state={state} />
    </form>
  );
}
