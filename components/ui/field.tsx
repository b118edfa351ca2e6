import type {
  InputHTMLAttributes,
  ReactNode,
  SelectHTMLAttributes,
  TextareaHTMLAttributes,
} from "react";
import { cn } from "@/lib/utils";

type FieldProps = { label: string; name: string; errors?: string[]; hint?: ReactNode };

const CONTROL = "mt-1 block w-full rounded-md border border-slate-300 px-3 py-2 text-sm";

function Field({
  id,
  label,
  errors,
  hint,
  className,
  children,
}: {
  id: string;
  label: string;
  errors?: string[];
  hint?: ReactNode;
  className?: string;
  children: ReactNode;
}) {
  return (
    <div className={cn("block text-sm", className)}>
      <label htmlFor={id} className="font-medium text-slate-800">
        {label}
      </label>
      {children}
      {hint && (
        <p id={`${id}-hint`} className="mt-1 text-slate-500 text-xs">
          {hint}
        </p>
      )}
      {errors?.length ? (
        <p id={`${id}-error`} className="mt-1 text-red-700 text-sm">
          {errors.join(" ")}
        </p>
      ) : null}
    </div>
  );
}

function describedBy(id: string, errors?: string[], hint?: ReactNode) {
  if (errors?.length) return { "aria-invalid": true as const, "aria-describedby": `${id}-error` };
  return hint ? { "aria-describedby": `${id}-hint` } : {};
}

export function TextField({
  label,
  name,
  errors,
  hint,
  className,
  id = name,
  ...props
}: FieldProps & InputHTMLAttributes<HTMLInputElement>) {
  return (
    <Field id={id} label={label} errors={errors} hint={hint} className={className}>
      <input
        id={id}
        name={name}
        className={cn(CONTROL, errors?.length ? "border-red-500" : null)}
        {...describedBy(id, errors, hint)}
        {...props}
      />
    </Field>
  );
}

export function SelectField({
  label,
  name,
  errors,
  hint,
  children,
  className,
  id = name,
  ...props
}: FieldProps & SelectHTMLAttributes<HTMLSelectElement>) {
  return (
    <Field id={id} label={label} errors={errors} hint={hint} className={className}>
      <select id={id} name={name} className={CONTROL} {...describedBy(id, errors, hint)} {...props}>
        {children}
      </select>
    </Field>
  );
}

export function TextAreaField({
  label,
  name,
  errors,
  hint,
  className,
  id = name,
  ...props
}: FieldProps & TextareaHTMLAttributes<HTMLTextAreaElement>) {
  return (
    <Field id={id} label={label} errors={errors} hint={hint} className={className}>
      <textarea
        id={id}
        name={name}
        className={CONTROL}
        {...describedBy(id, errors, hint)}
        {...props}
      />
    </Field>
  );
}
