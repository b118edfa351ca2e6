import type { ActionResult } from "@/lib/auth/action";

export function FormMessage({ state }: { state: ActionResult }) {
  if (!state.message) return null;
  return (
    <p
      role={state.ok ? "status" : "alert"}
      className={state.ok ? "text-green-800 text-sm" : "text-red-700 text-sm"}
    >
      {state.message}
    </p>
  );
}
