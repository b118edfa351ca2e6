// What each scope we ask for lets Mailwarden do, and why: shown before the provider's own
// consent screen, so that a person knows what they are about to grant.

export type ScopeExplanation = { scope: string; title: string; allows: string; why: string };

const EXPLANATIONS: Record<string, Omit<ScopeExplanation, "scope">> = {
  openid: {
    title: "Confirm which account you chose",
    allows: "Mailwarden learns a stable identifier for the account you pick.",
    why: "So that reconnecting the same mailbox updates it instead of adding a copy.",
  },
  email: {
    title: "See the mailbox's email address",
    allows: "Mailwarden reads the address of the account.",
    why: "It is the address mail is sent from, and the SMTP login name.",
  },
  profile: {
    title: "Recognise the account in its directory",
    allows: "Mailwarden learns the account's directory id and display name.",
    why: "Microsoft gives the account's permanent id only with this, so a renamed address stays the same mailbox.",
  },
  offline_access: {
    title: "Keep access while you are away",
    allows: "The provider gives Mailwarden a refresh token, stored encrypted.",
    why: "Your services send when nobody is signed in; without it the mailbox stops within an hour.",
  },
  "https://mail.google.com/": {
    title: "Send email as this Gmail address",
    allows:
      "Google's only scope that works for SMTP. Google describes it as full mailbox access; Mailwarden uses it solely to log in to smtp.gmail.com and send.",
    why: "Gmail accepts no narrower scope for SMTP (gmail.send does not work there).",
  },
  "https://outlook.office.com/SMTP.Send": {
    title: "Send email as this Microsoft 365 mailbox",
    allows: "Mailwarden can log in to smtp.office365.com with this mailbox and send.",
    why: "It is Microsoft's permission for sending over SMTP; it does not let anyone read mail.",
  },
  "mail.send": {
    title: "Send email as this demo mailbox",
    allows: "Mailwarden can log in to the demo SMTP server with this address and send.",
    why: "The demo provider's equivalent of Gmail's and Microsoft's sending permission.",
  },
};

export const WHAT_WE_NEVER_DO = [
  "read, search, move or delete your mail (we never open IMAP, POP or a mail API)",
  "keep the body of a message after it is sent",
  "show a token to anyone, write it to a log, or store it unencrypted",
  "share your data with anyone but the provider that runs the mailbox",
];

export function explainScopes(scopes: string[]): ScopeExplanation[] {
  return scopes.map((scope) => ({
    scope,
    ...(EXPLANATIONS[scope] ?? {
      title: scope,
      allows: "Asked for by the provider's setup.",
      why: "Required by the provider to complete the connection.",
    }),
  }));
}
