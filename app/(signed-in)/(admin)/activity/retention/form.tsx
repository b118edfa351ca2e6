"use client";

import { useActionState } from "react";
import { TextField } from "@/components/ui/field";
import { FormMessage } from "@/components/ui/form-message";
import { SubmitButton } from "@/components/ui/submit-button";
import type { ActionResult } from "@/lib/auth/action";
import { setRetentionAction } from "./actions";

const initial: ActionResult = {};

export function RetentionForm({ days }: { days: number | null }) {
  const [state, formAction] = useActionState(setRetentionAction, initial);
  return (
    <form action={formAction} className="flex flex-wrap items-end gap-3" noValidate>
      <TextField
        label="Keep activity for (days)"
        name="days"
        inputMode="numeric"
        defaultValue={days === null ? "" : String(days)}
        hint="Empty keeps every event forever."
        errors={state.fieldErrors?.days}
      />
      <SubmitButton pendingText="Saving…">Save</SubmitButton>
      <div className="w-full">
        <FormMessage state={state} />
      </div>
    </form>
  );
}
