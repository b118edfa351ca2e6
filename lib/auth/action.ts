import "server-only";
import { z } from "zod";
import { UserFacingError } from "@/lib/errors";
import type { MemberContext } from "./context";
import { PAGE_ORG_FIELD } from "./page-org";
import { requestInfo } from "./request";
import { hasPermission, type Permission } from "./roles";
import { auditDenied, getSessionContext, type SessionContext } from "./session";

/** The one result type of every form. */
export type ActionResult = {
  ok?: boolean;
  message?: string;
  fieldErrors?: Record<string, string[]>;
  /** A newly created secret (an API key), shown once in this response and never stored. */
  secret?: string;
};

/**
 * Form fields as an object; a name given several times (checkboxes) becomes an array. One pass
 * over the entries: a form is client input, and asking for each name's values in turn costs
 * names × entries (18,000 empty fields fit in an action's 1 MB and took seconds that way).
 */
export function formToObject(formData: FormData): Record<string, string | string[]> {
  const lists = new Map<string, string[]>();
  for (const [key, value] of formData.entries()) {
    if (key.startsWith("$ACTION") || key === PAGE_ORG_FIELD) continue;
    const list = lists.get(key) ?? [];
    if (typeof value === "string") list.push(value);
    lists.set(key, list);
  }
  const out: Record<string, string | string[]> = {};
  for (const [key, values] of lists) out[key] = values.length > 1 ? values : (values[0] ?? "");
  return out;
}

/**
 * Why an organisation's action is refused for the page it came from, or null. Every form sends
 * the organisation its page was rendered for (components/page-org.tsx); the session's may have
 * changed since, in another tab, and a form without a row id (an incident switch) would then act
 * on the other organisation. A form without the field is refused too: every form sends it.
 */
function pageOrgRefusal(formData: unknown, orgId: string): string | null {
  // A script may post anything as the action's arguments: no form is a form without the field.
  const sent = formData instanceof FormData ? formData.getAll(PAGE_ORG_FIELD) : [];
  if (sent.length === 0) {
    return "This form did not say which organisation it belongs to. Reload the page and try again.";
  }
  if (sent.some((value) => value !== orgId)) {
    return "This page belongs to another organisation: you switched organisation in another tab. Reload the page and try again.";
  }
  return null;
}

/** The session's view of the caller plus the one context lib/ functions take. */
export type ActionContext = SessionContext & MemberContext;

/** A signed-in member's context for this request: for the wrapper and for route handlers. */
export async function memberContextOf(session: SessionContext): Promise<ActionContext> {
  return {
    ...session,
    actor: { type: "user", id: session.user.id, label: session.user.email },
    request: await requestInfo(),
    allowedMailboxIds: null,
  };
}

/**
 * The one server-action wrapper: session, permission, then a zod parse of the form, then the
 * function with typed input and one context (lib/auth/context.ts). No action is written without
 * it, so none can skip the checks. A UserFacingError (lib/errors.ts) the function throws becomes
 * the form's message or field error; anything else propagates.
 * `"signedIn"` is for what a person does for themselves rather than in the active organisation
 * (answering an invitation, switching organisation): any signed-in member may call it.
 * Any other action first checks the form's page organisation (`pageOrgRefusal`) and changes
 * nothing when it is not the session's. `"signedIn"` ones do not: the org switcher must work from
 * a page of the organisation being left, and an invitation is the person's own.
 */
export function action<S extends z.ZodType>(
  options: {
    permission: Permission | "signedIn";
    name: string;
    schema: S;
    /** Form field names for a domain error's `field`, where the form names it differently. */
    formFields?: Record<string, string>;
  },
  run: (input: z.infer<S>, ctx: ActionContext) => Promise<ActionResult | undefined>,
) {
  return async (_previous: ActionResult, formData: FormData): Promise<ActionResult> => {
    const session = await getSessionContext();
    if (!session) return { message: "Your session has ended. Sign in again." };
    if (options.permission !== "signedIn") {
      const refusal = pageOrgRefusal(formData, session.orgId);
      if (refusal) return { message: refusal };
    }
    if (options.permission !== "signedIn" && !hasPermission(session.role, options.permission)) {
      await auditDenied(session, `action:${options.name}`, options.permission);
      return { message: "Your role does not allow this." };
    }
    const parsed = options.schema.safeParse(formToObject(formData));
    if (!parsed.success) {
      return {
        message: "Please correct the highlighted fields.",
        fieldErrors: z.flattenError(parsed.error).fieldErrors as Record<string, string[]>,
      };
    }
    const ctx = await memberContextOf(session);
    try {
      return (await run(parsed.data, ctx)) ?? { ok: true };
    } catch (error) {
      if (error instanceof UserFacingError) return userFacingResult(error, options.formFields);
      throw error;
    }
  };
}

/** A refusal meant for the person, as the form shows it (cf. dub's handleServerError). */
function userFacingResult(error: UserFacingError, formFields: Record<string, string> = {}) {
  if (error.field === undefined) return { message: error.message };
  const field = formFields[error.field] ?? error.field;
  return {
    ...(error.fieldMessage === undefined ? {} : { message: error.message }),
    fieldErrors: { [field]: [error.fieldMessage ?? error.message] },
  };
}
