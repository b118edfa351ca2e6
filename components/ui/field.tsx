import type { InputHTMLAttributes, ReactNode, SelectHTMLAttributes } from "react";
import { cn } from "@/lib/utils";

type FieldProps = { label: string; name: string; errors?: string[]; children?: ReactNode };

const CONTROL = "mt-1 block w-full rounded-md border border-slate-300 px-3 py-2 text-sm";

function FieldErrors({ id, errors }: { id: string; errors?: string[] }) {
  if (!errors?.length) return null;
  return (
    <p id={id} className="mt-1 text-red-700 text-sm">
      {errors.join(" ")}
    </p>
  );
}

export function TextField({
  label,
  name,
  errors,
  className,
  ...props
}: FieldProps & InputHTMLAttributes<HTMLInputElement>) {
  const errorId = `${name}-error`;
  return (
    <label className={cn("block text-sm", className)}>
      <span className="font-medium text-slate-800">{label}</span>
      <input
        name={name}
        className={cn(CONTROL, errors?.length ? "border-red-500" : null)}
        aria-invalid={errors?.length ? true : undefined}
        aria-describedby={errors?.length ? errorId : undefined}
        {...props}
      />
      <FieldErrors id={errorId} errors={errors} />
    </label>
  );
}

export function SelectField({
  label,
  name,
  errors,
  children,
  className,
  ...props
}: FieldProps & SelectHTMLAttributes<HTMLSelectElement>) {
  const errorId = `${name}-error`;
  return (
    <label className={cn("block text-sm", className)}>
      <span className="font-medium text-slate-800">{label}</span>
      <select
        name={name}
        className={CONTROL}
        aria-invalid={errors?.length ? true : undefined}
        aria-describedby={errors?.length ? errorId : undefined}
        {...props}
      >
        {children}
      </select>
      <FieldErrors id={errorId} errors={errors} />
    </label>
  );
}
