"use client";

import { useActionState } from "react";
import { CopyButton } from "@/components/copy-button";
import { TextField } from "@/components/ui/field";
import { FormMessage } from "@/components/ui/form-message";
import { SubmitButton } from "@/components/ui/submit-button";
import type { ActionResult } from "@/lib/auth/action";
import { createApiKeyAction, restrictApiKeyAction, revokeApiKeyAction } from "./actions";

const initial: ActionResult = {};

export function CreateApiKeyForm({ mailboxes }: { mailboxes: { id: string; address: string }[] }) {
  const [state, formAction] = useActionState(createApiKeyAction, initial);
  return (
    <form action={formAction} className="space-y-4" noValidate>
      <TextField label="Name" name="name" autoComplete="off" errors={state.fieldErrors?.name} />
      <TextField
        label="Expires on (optional)"
        name="expiresOn"
        type="date"
        hint="After this day the key is refused like a revoked one. Leave empty for no expiry."
        errors={state.fieldErrors?.expiresOn}
      />
      <fieldset className="text-sm" aria-describedby="mailboxes-hint">
        <legend className="font-medium text-slate-800">Mailboxes it may send from</legend>
        <p id="mailboxes-hint" className="text-slate-500 text-xs">
          Tick none to allow every mailbox of the organisation.
        </p>
        {mailboxes.map((m) => (
          <label key={m.id} className="mt-1 flex items-center gap-2">
            <input type="checkbox" name="mailboxIds" value={m.id} />
            {m.address}
          </label>
        ))}
        {state.fieldErrors?.mailboxIds && (
          <p className="mt-1 text-red-700 text-sm">{state.fieldErrors.mailboxIds.join(" ")}</p>
        )}
      </fieldset>
      <SubmitButton pendingText="Creating…">Create key</SubmitButton>
      <FormMessage state={state} />
      {state.secret && (
        <div className="rounded-md border border-green-300 bg-green-50 p-3">
          <label htmlFor="new-api-key" className="font-medium text-green-900 text-sm">
            Your new API key
          </label>
          <input
            id="new-api-key"
            readOnly
            value={state.secret}
            className="mt-1 block w-full rounded border border-green-300 bg-white px-2 py-1 font-mono text-xs"
            onFocus={(event) => event.currentTarget.select()}
          />
          <div className="mt-2">
            <CopyButton value={state.secret} label="Copy the new API key" />
          </div>
          <p className="mt-2 text-green-900 text-sm">
            This key is shown once. Keep it in a secret manager (not in code or chat); if it is
            lost, revoke it and create another.
          </p>
        </div>
      )}
    </form>
  );
}

export function RevokeApiKeyButton({ keyId, name }: { keyId: string; name: string }) {
  const [state, formAction] = useActionState(revokeApiKeyAction, initial);
  return (
    <form
      action={formAction}
      onSubmit={(event) => {
        if (!window.confirm(`Revoke the key "${name}"? Services using it stop sending at once.`))
          event.preventDefault();
      }}
    >
      <input type="hidden" name="keyId" value={keyId} />
      <SubmitButton variant="danger" pendingText="Revoking…" aria-label={`Revoke key ${name}`}>
        Revoke
      </SubmitButton>
      <FormMessage state={state} />
    </form>
  );
}

export function EditKeyMailboxesForm({
  keyId,
  name,
  allowed,
  mailboxes,
}: {
  keyId: string;
  name: string;
  allowed: string[] | null;
  mailboxes: { id: string; address: string }[];
}) {
  const [state, formAction] = useActionState(restrictApiKeyAction, initial);
  return (
    <details className="text-sm">
      <summary className="cursor-pointer text-brand-700">Edit mailboxes</summary>
      <form action={formAction} className="mt-2 space-y-2" noValidate>
        <input type="hidden" name="keyId" value={keyId} />
        <fieldset>
          <legend className="font-medium text-slate-800">Mailboxes {name} may send from</legend>
          <p className="text-slate-500 text-xs">Tick none to allow every mailbox.</p>
          {mailboxes.map((m) => (
            <label key={m.id} className="mt-1 flex items-center gap-2">
              <input
                type="checkbox"
                name="mailboxIds"
                value={m.id}
                defaultChecked={allowed?.includes(m.id) ?? false}
              />
              {m.address}
            </label>
          ))}
          {state.fieldErrors?.mailboxIds && (
            <p className="mt-1 text-red-700 text-sm">{state.fieldErrors.mailboxIds.join(" ")}</p>
          )}
        </fieldset>
        <SubmitButton
          variant="secondary"
          pendingText="Saving…"
          aria-label={`Save mailboxes of ${name}`}
        >
          Save mailboxes
        </SubmitButton>
        <FormMessage state={state} />
      </form>
    </details>
  );
}
