"use client";

import { useActionState } from "react";
import { FormMessage } from "@/components/ui/form-message";
import { SubmitButton } from "@/components/ui/submit-button";
import type { ActionResult } from "@/lib/auth/action";
import {
  retryMailboxAction,
  revokeMailboxAction,
  startConnectAction,
  testConnectionAction,
} from "./actions";

const initial: ActionResult = {};

export function ConnectForm({
  provider,
  mailboxId,
  label,
}: {
  provider: string;
  mailboxId?: string;
  label: string;
}) {
  const [state, formAction] = useActionState(startConnectAction, initial);
  return (
    <form action={formAction} className="space-y-2">
      <input type="hidden" name="provider" value={provider} />
      {mailboxId && <input type="hidden" name="mailboxId" value={mailboxId} />}
      <SubmitButton pendingText="Opening the provider…">{label}</SubmitButton>
      <FormMessage state={state} />
    </form>
  );
}

// Stays mounted after the mailbox is revoked so that the provider's answer remains on screen.
export function RevokeForm({
  mailboxId,
  address,
  isRevoked,
}: {
  mailboxId: string;
  address: string;
  isRevoked: boolean;
}) {
  const [state, formAction] = useActionState(revokeMailboxAction, initial);
  return (
    <form
      action={formAction}
      className="space-y-1 text-right"
      onSubmit={(event) => {
        const question = `Revoke ${address}? Mailwarden revokes its access at the provider and deletes its tokens; sending from this mailbox stops until it is connected again.`;
        if (!window.confirm(question)) event.preventDefault();
      }}
    >
      <input type="hidden" name="mailboxId" value={mailboxId} />
      {!isRevoked && (
        <SubmitButton variant="danger" pendingText="Revoking…" aria-label={`Revoke ${address}`}>
          Revoke
        </SubmitButton>
      )}
      <FormMessage state={state} />
    </form>
  );
}

export function RetryMailboxForm({ mailboxId, address }: { mailboxId: string; address: string }) {
  const [state, formAction] = useActionState(retryMailboxAction, initial);
  return (
    <form action={formAction} className="space-y-1 text-right">
      <input type="hidden" name="mailboxId" value={mailboxId} />
      <SubmitButton variant="secondary" pendingText="Retrying…" aria-label={`Retry ${address} now`}>
        Retry now
      </SubmitButton>
      <FormMessage state={state} />
    </form>
  );
}

export function TestConnectionForm({ mailboxId, address }: { mailboxId: string; address: string }) {
  const [state, formAction] = useActionState(testConnectionAction, initial);
  return (
    <form action={formAction} className="space-y-1 text-right">
      <input type="hidden" name="mailboxId" value={mailboxId} />
      <SubmitButton
        variant="secondary"
        pendingText="Testing…"
        aria-label={`Test connection of ${address}`}
      >
        Test connection
      </SubmitButton>
      <FormMessage state={state} />
    </form>
  );
}
