"use client";

import { useActionState } from "react";
import { SelectField, TextField } from "@/components/ui/field";
import { FormMessage } from "@/components/ui/form-message";
import { SubmitButton } from "@/components/ui/submit-button";
import type { ActionResult } from "@/lib/auth/action";
import { setClientFactsAction } from "./actions";

const initial: ActionResult = {};

export function ClientFactsForm({
  facts,
}: {
  facts: {
    googlePublishingStatus: "testing" | "production" | null;
    googleSecretExpiresOn: string | null;
    microsoftSecretExpiresOn: string | null;
  };
}) {
  const [state, formAction] = useActionState(setClientFactsAction, initial);
  return (
    <form action={formAction} className="grid gap-4 md:grid-cols-3" noValidate>
      <SelectField
        label="Google app publishing status"
        name="googlePublishingStatus"
        defaultValue={facts.googlePublishingStatus ?? ""}
        hint="Google Cloud console → OAuth consent screen."
        errors={state.fieldErrors?.googlePublishingStatus}
      >
        <option value="">Not known</option>
        <option value="testing">Testing</option>
        <option value="production">In production</option>
      </SelectField>
      <TextField
        label="Google client secret expires on"
        name="googleSecretExpiresOn"
        type="date"
        defaultValue={facts.googleSecretExpiresOn ?? ""}
        hint="Empty if unknown or it never expires."
        errors={state.fieldErrors?.googleSecretExpiresOn}
      />
      <TextField
        label="Microsoft client secret expires on"
        name="microsoftSecretExpiresOn"
        type="date"
        defaultValue={facts.microsoftSecretExpiresOn ?? ""}
        hint="Entra admin center → App registrations → Certificates & secrets."
        errors={state.fieldErrors?.microsoftSecretExpiresOn}
      />
      <div className="flex flex-wrap items-center gap-3 md:col-span-3">
        <SubmitButton pendingText="Saving…">Save</SubmitButton>
        <FormMessage state={state} />
      </div>
    </form>
  );
}
