// Shared by the client forms and the action wrapper (lib/auth/action.ts), so no "server-only".

/**
 * The hidden form field that names the organisation a page was rendered for. The wrapper
 * refuses an organisation's action when it differs from the session's current organisation
 * (switched in another tab since) or is missing (ARCHITECTURE.md, Calling convention).
 */
export const PAGE_ORG_FIELD = "_org";
