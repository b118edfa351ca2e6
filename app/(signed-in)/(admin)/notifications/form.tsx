"use client";

import { useActionState } from "react";
import { SelectField } from "@/components/ui/field";
import { FormMessage } from "@/components/ui/form-message";
import { SubmitButton } from "@/components/ui/submit-button";
import type { ActionResult } from "@/lib/auth/action";
import { setNotificationSenderAction } from "./actions";

const initial: ActionResult = {};

export function NotificationSenderForm({
  current,
  mailboxes,
}: {
  current: string | null;
  mailboxes: { id: string; address: string }[];
}) {
  const [state, formAction] = useActionState(setNotificationSenderAction, initial);
  return (
    <form action={formAction} className="flex flex-wrap items-end gap-3" noValidate>
      <SelectField
        label="Send notification emails from"
        name="mailboxId"
        defaultValue={current ?? ""}
        errors={state.fieldErrors?.mailboxId}
      >
        <option value="">No email: dashboard notices only</option>
        {mailboxes.map((m) => (
          <option key={m.id} value={m.id}>
            {m.address}
          </option>
        ))}
      </SelectField>
      <SubmitButton pendingText="Saving…">Save</SubmitButton>
      <div className="w-full">
        <FormMessage state={state} />
      </div>
    </form>
  );
}
