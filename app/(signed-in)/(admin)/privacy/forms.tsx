"use client";

import { useActionState } from "react";
import { SelectField, TextField } from "@/components/ui/field";
import { FormMessage } from "@/components/ui/form-message";
import { SubmitButton } from "@/components/ui/submit-button";
import type { ActionResult } from "@/lib/auth/action";
import { eraseAction, recordRequestAction } from "./actions";

const initial: ActionResult = {};

export function RecordRequestForm({ today }: { today: string }) {
  const [state, formAction] = useActionState(recordRequestAction, initial);
  return (
    <form action={formAction} className="grid gap-4 md:grid-cols-4 md:items-end" noValidate>
      <SelectField label="Request" name="kind" errors={state.fieldErrors?.kind}>
        <option value="export">Export (access, portability)</option>
        <option value="erasure">Erasure</option>
      </SelectField>
      <TextField
        label="About (email address)"
        name="email"
        type="email"
        autoComplete="off"
        errors={state.fieldErrors?.email}
      />
      <TextField
        label="Received on"
        name="receivedOn"
        type="date"
        defaultValue={today}
        max={today}
        errors={state.fieldErrors?.receivedOn}
      />
      <div>
        <SubmitButton pendingText="Recording…">Record request</SubmitButton>
      </div>
      <div className="md:col-span-4">
        <FormMessage state={state} />
      </div>
    </form>
  );
}

export function EraseForm({ requestId }: { requestId: string }) {
  const [state, formAction] = useActionState(eraseAction, initial);
  return (
    <form action={formAction} className="space-y-3" noValidate>
      <input type="hidden" name="requestId" value={requestId} />
      <TextField
        label="Type erase to confirm"
        name="confirm"
        autoComplete="off"
        errors={state.fieldErrors?.confirm}
      />
      <SubmitButton variant="danger" pendingText="Erasing…">
        Erase now
      </SubmitButton>
      <FormMessage state={state} />
    </form>
  );
}
