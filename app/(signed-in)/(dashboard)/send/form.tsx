"use client";

import { useActionState } from "react";
import { SelectField, TextAreaField, TextField } from "@/components/ui/field";
import { FormMessage } from "@/components/ui/form-message";
import { SubmitButton } from "@/components/ui/submit-button";
import type { ActionResult } from "@/lib/auth/action";
import { sendTestMessageAction } from "./actions";

const initial: ActionResult = {};

export function SendTestForm({ mailboxes }: { mailboxes: { id: string; address: string }[] }) {
  const [state, formAction] = useActionState(sendTestMessageAction, initial);
  const errors = state.fieldErrors ?? {};
  return (
    <form action={formAction} className="space-y-4" noValidate>
      <SelectField label="From mailbox" name="mailbox" errors={errors.mailbox}>
        {mailboxes.map((m) => (
          <option key={m.id} value={m.id}>
            {m.address}
          </option>
        ))}
      </SelectField>
      <TextAreaField
        label="To"
        name="to"
        rows={2}
        hint="One address per line."
        errors={errors.to}
      />
      <TextField label="Subject" name="subject" errors={errors.subject} />
      <TextAreaField label="Message" name="text" rows={6} errors={errors.text} />
      <SubmitButton pendingText="Sending…">Send test message</SubmitButton>
      <FormMessage state={state} />
    </form>
  );
}
