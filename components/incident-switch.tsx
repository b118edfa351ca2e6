"use client";

import { useActionState, useId, useState } from "react";
import { Button } from "@/components/ui/button";
import { FormMessage } from "@/components/ui/form-message";
import { SubmitButton } from "@/components/ui/submit-button";
import type { ActionResult } from "@/lib/auth/action";

type FormAction = (previous: ActionResult, formData: FormData) => Promise<ActionResult>;

// One tap opens the confirmation; the confirmation asks for the reason (recorded in the audit
// log and shown in the banner) and is a second, deliberate tap. Works the same on a phone.
export function IncidentSwitch({
  action,
  label,
  confirmLabel,
  explanation,
  fields = {},
  askReason = true,
  variant = "danger",
}: {
  action: FormAction;
  label: string;
  confirmLabel: string;
  explanation: string;
  fields?: Record<string, string>;
  askReason?: boolean;
  variant?: "danger" | "secondary" | "primary";
}) {
  const [open, setOpen] = useState(false);
  // Done: fold the confirmation away, so that the next tap starts a fresh one.
  const [state, formAction] = useActionState(async (previous: ActionResult, data: FormData) => {
    const result = await action(previous, data);
    if (result.ok) setOpen(false);
    return result;
  }, {});
  const id = useId();
  const errors = state.fieldErrors?.reason;
  return (
    <div className="space-y-2">
      {!open && (
        <Button
          type="button"
          variant={variant}
          className="w-full sm:w-auto"
          onClick={() => setOpen(true)}
        >
          {label}
        </Button>
      )}
      {open && (
        <form
          action={formAction}
          className="space-y-2 rounded-md border border-slate-300 bg-slate-50 p-3"
          aria-label={label}
        >
          {Object.entries(fields).map(([name, value]) => (
            <input key={name} type="hidden" name={name} value={value} />
          ))}
          <p className="text-slate-700 text-sm">{explanation}</p>
          {askReason && (
            <div className="text-sm">
              <label htmlFor={`${id}-reason`} className="font-medium text-slate-800">
                Reason
              </label>
              <textarea
                id={`${id}-reason`}
                name="reason"
                required
                maxLength={500}
                rows={2}
                aria-invalid={errors ? true : undefined}
                aria-describedby={errors ? `${id}-error` : undefined}
                className="mt-1 block w-full rounded-md border border-slate-300 px-3 py-2 text-sm"
              />
              {errors && (
                <p id={`${id}-error`} className="mt-1 text-red-700 text-sm">
                  {errors.join(" ")}
                </p>
              )}
            </div>
          )}
          <div className="flex flex-wrap gap-2">
            <SubmitButton variant={variant} pendingText="Working…" className="flex-1 sm:flex-none">
              {confirmLabel}
            </SubmitButton>
            <Button
              type="button"
              variant="secondary"
              className="flex-1 sm:flex-none"
              onClick={() => setOpen(false)}
            >
              Cancel
            </Button>
          </div>
        </form>
      )}
      <FormMessage state={state} />
    </div>
  );
}
