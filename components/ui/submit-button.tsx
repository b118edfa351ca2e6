"use client";

import { useFormStatus } from "react-dom";
import { PageOrgField } from "@/components/page-org";
import { Button, type ButtonProps } from "./button";

/** A form's submit button; it also sends the page's organisation (components/page-org.tsx). */
export function SubmitButton({
  children,
  pendingText,
  ...props
}: ButtonProps & { pendingText?: string }) {
  const { pending } = useFormStatus();
  return (
    <>
      <PageOrgField />
      <Button type="submit" disabled={pending} aria-disabled={pending} {...props}>
        {pending ? (pendingText ?? "Working…") : children}
      </Button>
    </>
  );
}
