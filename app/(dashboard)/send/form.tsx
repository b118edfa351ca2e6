"use client";

import { useActionState } from "react";
import { SelectField, TextField } from "@/components/ui/field";
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
      <div className="block text-sm">
        <label htmlFor="to" className="font-medium text-slate-800">
          To
        </label>
        <textarea
          id="to"
          name="to"
          rows={2}
          className="mt-1 block w-full rounded-md border border-slate-300 px-3 py-2 text-sm"
          aria-invalid={errors.to ? true : undefined}
          aria-describedby={errors.to ? "to-error" : "to-hint"}
        />
        <p id="to-hint" className="mt-1 text-slate-500 text-xs">
          One address per line.
        </p>
        {errors.to && (
          <p id="to-error" className="mt-1 text-red-700 text-sm">
            {errors.to.join(" ")}
          </p>
        )}
      </div>
      <TextField label="Subject" name="subject" errors={errors.subject} />
      <div className="block text-sm">
        <label htmlFor="text" className="font-medium text-slate-800">
          Message
        </label>
        <textarea
          id="text"
          name="text"
          rows={6}
          className="mt-1 block w-full rounded-md border border-slate-300 px-3 py-2 text-sm"
          aria-invalid={errors.text ? true : undefined}
          aria-describedby={errors.text ? "text-error" : undefined}
        />
        {errors.text && (
          <p id="text-error" className="mt-1 text-red-700 text-sm">
            {errors.text.join(" ")}
          </p>
        )}
      </div>
      <SubmitButton pendingText="Sending…">Send test message</SubmitButton>
      <FormMessage state={state} />
    </form>
  );
}
