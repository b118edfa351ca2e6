"use client";

import { useActionState } from "react";
import { FormMessage } from "@/components/ui/form-message";
import { SubmitButton } from "@/components/ui/submit-button";
import type { ActionResult } from "@/lib/auth/action";
import { cancelMessageAction } from "./actions";

const initial: ActionResult = {};

export function CancelMessageButton({
  messageId,
  subject,
}: {
  messageId: string;
  subject: string;
}) {
  const [state, formAction] = useActionState(cancelMessageAction, initial);
  return (
    <form
      action={formAction}
      onSubmit={(event) => {
        if (!window.confirm(`Cancel "${subject}"? It will not be sent.`)) event.preventDefault();
      }}
    >
      <input type="hidden" name="messageId" value={messageId} />
      <SubmitButton
        variant="secondary"
        pendingText="Cancelling…"
        aria-label={`Cancel message ${subject}`}
      >
        Cancel
      </SubmitButton>
      <FormMessage state={state} />
    </form>
  );
}
