import type {
  InputHTMLAttributes,
  ReactNode,
  SelectHTMLAttributes,
  TextareaHTMLAttributes,
} from "react";
import { cn } from "@/lib/utils";

type FieldProps = { label: string; name: string; errors?: string[]; hint?: ReactNode };

/** What every control inside a field carries: its id, its look and what describes it. */
type ControlProps = {
  id: string;
  className: string;
  "aria-invalid"?: true;
  "aria-describedby"?: string;
};

const CONTROL = "mt-1 block w-full rounded-md border px-3 py-2 text-sm";

/**
 * The one wrapper of a labelled control: the label, the hint, the error and the control's id,
 * border and aria attributes all come from here, so that no kind of control can drift from the
 * others (an invalid select looks and reads like an invalid input).
 */
export function Field({
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
  children: (control: ControlProps) => ReactNode;
}) {
  const invalid = Boolean(errors?.length);
  const describedBy = [hint ? `${id}-hint` : null, invalid ? `${id}-error` : null]
    .filter(Boolean)
    .join(" ");
  return (
    <div className={cn("block text-sm", className)}>
      <label htmlFor={id} className="font-medium text-slate-800">
        {label}
      </label>
      {children({
        id,
        className: cn(CONTROL, invalid ? "border-red-500" : "border-slate-300"),
        ...(invalid ? { "aria-invalid": true as const } : {}),
        ...(describedBy ? { "aria-describedby": describedBy } : {}),
      })}
      {hint && (
        <p id={`${id}-hint`} className="mt-1 text-slate-500 text-xs">
          {hint}
        </p>
      )}
      {invalid ? (
        <p id={`${id}-error`} className="mt-1 text-red-700 text-sm">
          {errors?.join(" ")}
        </p>
      ) : null}
    </div>
  );
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
      {(control) => <input name={name} {...props} {...control} />}
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
      {(control) => (
        <select name={name} {...props} {...control}>
          {children}
        </select>
      )}
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
      {(control) => <textarea name={name} {...props} {...control} />}
    </Field>
  );
}
