"use client";

import { useActionState } from "react";
import { TextField } from "@/components/ui/field";
import { FormMessage } from "@/components/ui/form-message";
import { SubmitButton } from "@/components/ui/submit-button";
import type { ActionResult } from "@/lib/auth/action";
import { setRetentionAction } from "./actions";

const initial: ActionResult = {};

type Settings = {
  auditDays: number | null;
  messageDays: number | null;
  networkDays: number | null;
};

const asField = (days: number | null) => (days === null ? "" : String(days));

export function RetentionForm({ settings }: { settings: Settings }) {
  const [state, formAction] = useActionState(setRetentionAction, initial);
  return (
    <form action={formAction} className="grid max-w-xl gap-4" noValidate>
      <TextField
        label="Keep activity for (days)"
        name="auditDays"
        inputMode="numeric"
        defaultValue={asField(settings.auditDays)}
        hint="Older events are purged. Empty keeps every event forever."
        errors={state.fieldErrors?.auditDays}
      />
      <TextField
        label="Keep message recipients and subjects for (days)"
        name="messageDays"
        inputMode="numeric"
        defaultValue={asField(settings.messageDays)}
        hint="Older messages keep their status, mailbox and recipient count; their recipients are emptied and their subject replaced. Webhook deliveries that finished before then are deleted. Empty keeps them."
        errors={state.fieldErrors?.messageDays}
      />
      <TextField
        label="Keep IP addresses and user agents in activity for (days)"
        name="networkDays"
        inputMode="numeric"
        defaultValue={asField(settings.networkDays)}
        hint="Older events keep everything else and still verify. Empty keeps them."
        errors={state.fieldErrors?.networkDays}
      />
      <div>
        <SubmitButton pendingText="Saving…">Save</SubmitButton>
      </div>
      <FormMessage state={state} />
    </form>
  );
}
