// Shared by the client forms and the action wrapper (lib/auth/action.ts), so no "server-only".

/** The hidden form field that names the organisation a page was rendered for. */
export const PAGE_ORG_FIELD = "_org";
