import "server-only";
import type { DbOrTx } from "@/db";
import { getUserEmail } from "@/db/queries/users";
import { env } from "@/lib/env";

/**
 * Whether this person is an operator of the deployment: they pull the switches of every
 * organisation and read the events that belong to none. Named in OPERATOR_EMAILS and holding
 * that address as their sign-in provider confirmed it, so that an account whose provider lets
 * anyone claim any address (nOAuth) cannot pass for an operator.
 */
export async function isOperator({ db, userId }: { db: DbOrTx; userId: string }) {
  const operators = env().OPERATOR_EMAILS;
  if (operators.length === 0) return false;
  const user = await getUserEmail({ db, userId });
  if (!user?.email || !user.emailVerified) return false;
  return operators.includes(user.email.toLowerCase());
}
