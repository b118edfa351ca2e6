import "server-only";
import { env } from "@/lib/env";

/** Operators (OPERATOR_EMAILS) read the chain of events that belong to no organisation. */
export function isOperator(email: string | null): boolean {
  if (!email) return false;
  return (env().OPERATOR_EMAILS ?? []).includes(email.toLowerCase());
}
