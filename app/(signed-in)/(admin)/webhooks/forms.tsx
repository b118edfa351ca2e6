"use client";

import { useRouter } from "next/navigation";
import { useActionState, useEffect } from "react";
import { CopyButton } from "@/components/copy-button";
import { TextField } from "@/components/ui/field";
import { FormMessage } from "@/components/ui/form-message";
import { SubmitButton } from "@/components/ui/submit-button";
import type { ActionResult } from "@/lib/auth/action";
import {
  WEBHOOK_EVENT_LABELS,
  WEBHOOK_EVENT_TYPES,
  type WebhookEventType,
} from "@/lib/webhooks/event-types";
import {
  createWebhookEndpointAction,
  deleteWebhookEndpointAction,
  rotateWebhookSecretAction,
  sendWebhookTestAction,
  setWebhookEndpointEnabledAction,
  updateWebhookEndpointAction,
} from "./actions";

const initial: ActionResult = {};

function EventChoices({ chosen, errors }: { chosen: string[]; errors?: string[] }) {
  return (
    <fieldset className="text-sm" aria-describedby="events-hint">
      <legend className="font-medium text-slate-800">Events</legend>
      <p id="events-hint" className="text-slate-500 text-xs">
        Only the events ticked here are sent to this URL.
      </p>
      {WEBHOOK_EVENT_TYPES.map((type: WebhookEventType) => (
        <label key={type} className="mt-1 flex items-center gap-2">
          <input
            type="checkbox"
            name="events"
            value={type}
            defaultChecked={chosen.includes(type)}
          />
          <code className="text-xs">{type}</code>
          <span className="text-slate-600">{WEBHOOK_EVENT_LABELS[type]}</span>
        </label>
      ))}
      {errors && <p className="mt-1 text-red-700 text-sm">{errors.join(" ")}</p>}
    </fieldset>
  );
}

function SecretOnce({ secret, label }: { secret: string; label: string }) {
  return (
    <div className="rounded-md border border-green-300 bg-green-50 p-3">
      <label htmlFor="webhook-secret" className="font-medium text-green-900 text-sm">
        {label}
      </label>
      <input
        id="webhook-secret"
        readOnly
        value={secret}
        className="mt-1 block w-full rounded border border-green-300 bg-white px-2 py-1 font-mono text-xs"
        onFocus={(event) => event.currentTarget.select()}
      />
      <div className="mt-2">
        <CopyButton value={secret} label="Copy the signing secret" />
      </div>
      <p className="mt-2 text-green-900 text-sm">
        This secret is shown once. Your receiver uses it to check the <code>webhook-signature</code>{" "}
        header (Standard Webhooks); keep it in a secret manager.
      </p>
    </div>
  );
}

export function CreateEndpointForm() {
  const [state, formAction] = useActionState(createWebhookEndpointAction, initial);
  return (
    <form action={formAction} className="space-y-4" noValidate>
      <TextField
        label="URL"
        name="url"
        type="url"
        autoComplete="off"
        hint="https:// on port 443 or 8443, at a public address (plain http, other ports and local addresses only in demo mode)."
        errors={state.fieldErrors?.url}
      />
      <TextField
        label="Description (optional)"
        name="description"
        autoComplete="off"
        errors={state.fieldErrors?.description}
      />
      <EventChoices chosen={[]} errors={state.fieldErrors?.events} />
      <SubmitButton pendingText="Creating…">Create endpoint</SubmitButton>
      <FormMessage state={state} />
      {state.secret && (
        <SecretOnce secret={state.secret} label="Signing secret of the new endpoint" />
      )}
    </form>
  );
}

export function EditEndpointForm({
  endpoint,
}: {
  endpoint: { id: string; url: string; description: string; events: string[]; enabled: boolean };
}) {
  const [state, formAction] = useActionState(updateWebhookEndpointAction, initial);
  return (
    <form action={formAction} className="space-y-4" noValidate>
      <input type="hidden" name="endpointId" value={endpoint.id} />
      <input type="hidden" name="enabled" value={String(endpoint.enabled)} />
      <TextField
        label="URL"
        name="url"
        type="url"
        defaultValue={endpoint.url}
        autoComplete="off"
        errors={state.fieldErrors?.url}
      />
      <TextField
        label="Description (optional)"
        name="description"
        defaultValue={endpoint.description}
        autoComplete="off"
        errors={state.fieldErrors?.description}
      />
      <EventChoices chosen={endpoint.events} errors={state.fieldErrors?.events} />
      <SubmitButton variant="secondary" pendingText="Saving…">
        Save changes
      </SubmitButton>
      <FormMessage state={state} />
    </form>
  );
}

export function TestDeliveryButton({ endpointId }: { endpointId: string }) {
  const [state, formAction] = useActionState(sendWebhookTestAction, initial);
  const router = useRouter();
  // The attempt runs on the queue: look again shortly for its answer.
  useEffect(() => {
    if (!state.ok) return;
    const timer = setTimeout(() => router.refresh(), 1_500);
    return () => clearTimeout(timer);
  }, [state, router]);
  return (
    <form action={formAction}>
      <input type="hidden" name="endpointId" value={endpointId} />
      <SubmitButton pendingText="Sending…">Send a test delivery</SubmitButton>
      <FormMessage state={state} />
    </form>
  );
}

export function EnableEndpointButton({
  endpointId,
  enabled,
}: {
  endpointId: string;
  enabled: boolean;
}) {
  const [state, formAction] = useActionState(setWebhookEndpointEnabledAction, initial);
  return (
    <form action={formAction}>
      <input type="hidden" name="endpointId" value={endpointId} />
      <input type="hidden" name="enabled" value={String(!enabled)} />
      <SubmitButton variant="secondary" pendingText="Saving…">
        {enabled ? "Turn off" : "Turn on"}
      </SubmitButton>
      <FormMessage state={state} />
    </form>
  );
}

export function RotateSecretButton({ endpointId }: { endpointId: string }) {
  const [state, formAction] = useActionState(rotateWebhookSecretAction, initial);
  return (
    <form
      action={formAction}
      className="space-y-2"
      onSubmit={(event) => {
        if (!window.confirm("Make a new signing secret for this endpoint?")) event.preventDefault();
      }}
    >
      <input type="hidden" name="endpointId" value={endpointId} />
      <SubmitButton variant="secondary" pendingText="Rotating…">
        Rotate the secret
      </SubmitButton>
      <FormMessage state={state} />
      {state.secret && <SecretOnce secret={state.secret} label="The new signing secret" />}
    </form>
  );
}

export function DeleteEndpointButton({ endpointId, url }: { endpointId: string; url: string }) {
  const [state, formAction] = useActionState(deleteWebhookEndpointAction, initial);
  const router = useRouter();
  useEffect(() => {
    if (state.ok) router.push("/webhooks");
  }, [state, router]);
  return (
    <form
      action={formAction}
      onSubmit={(event) => {
        if (!window.confirm(`Delete the endpoint ${url} and its delivery history?`))
          event.preventDefault();
      }}
    >
      <input type="hidden" name="endpointId" value={endpointId} />
      <SubmitButton variant="danger" pendingText="Deleting…">
        Delete endpoint
      </SubmitButton>
      <FormMessage state={state} />
    </form>
  );
}
