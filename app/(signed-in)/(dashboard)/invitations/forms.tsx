"use client";

import { useActionState } from "react";
import { FormMessage } from "@/components/ui/form-message";
import { SubmitButton } from "@/components/ui/submit-button";
import type { ActionResult } from "@/lib/auth/action";
import { acceptInvitationAction, declineInvitationAction } from "./actions";

const initial: ActionResult = {};

export function InvitationAnswer({
  invitationId,
  orgName,
}: {
  invitationId: string;
  orgName: string;
}) {
  const [acceptState, accept] = useActionState(acceptInvitationAction, initial);
  const [declineState, decline] = useActionState(declineInvitationAction, initial);
  return (
    <div className="flex flex-wrap items-center gap-2">
      <form action={accept}>
        <input type="hidden" name="invitationId" value={invitationId} />
        <SubmitButton pendingText="Joining…" aria-label={`Accept the invitation to ${orgName}`}>
          Accept
        </SubmitButton>
      </form>
      <form action={decline}>
        <input type="hidden" name="invitationId" value={invitationId} />
        <SubmitButton
          variant="secondary"
          pendingText="Declining…"
          aria-label={`Decline the invitation to ${orgName}`}
        >
          Decline
        </SubmitButton>
      </form>
      <FormMessage state={acceptState.message ? acceptState : declineState} />
    </div>
  );
}
