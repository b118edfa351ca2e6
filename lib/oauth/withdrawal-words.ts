// What became of a grant the provider issued but Mailwarden did not keep, as the callback decides
// it (grant-withdrawal.ts) and as the connect page tells it. Pure: the page imports it too.

export const WITHDRAWALS = ["revoked", "failed", "not_supported", "kept_in_use"] as const;

/** What became of a grant the provider issued that Mailwarden does not keep. */
export type Withdrawal = (typeof WITHDRAWALS)[number];

/** The outcome named in the connect page's query, or null for anything else (never shown). */
export function parseWithdrawal(value: unknown): Withdrawal | null {
  return (WITHDRAWALS as readonly unknown[]).includes(value) ? (value as Withdrawal) : null;
}

/** Where a Microsoft consent is removed by hand: Microsoft has no revocation endpoint. */
export const MICROSOFT_CONSENT_REMOVAL =
  "the account's owner at https://myapps.microsoft.com (find Mailwarden, then remove it), or a " +
  "Microsoft 365 administrator in the Microsoft Entra admin center › Enterprise applications";

/** Where a provider's account holder removes an app's access by hand, where we know it. */
export const MANAGE_ACCESS: Partial<Record<string, string>> = {
  google: "https://myaccount.google.com/permissions",
};

/** Where an account holder removes Mailwarden's access by hand ("at …" or "in …"). */
export function manualRemoval(provider: { id: string } | null) {
  const where = provider ? MANAGE_ACCESS[provider.id] : undefined;
  return where ? `at ${where}` : "in the account's security settings at the provider";
}

/** One sentence saying truthfully what happened to the permission the provider just gave. */
export function explainWithdrawal(
  provider: { id: string; label: string },
  withdrawal: Withdrawal,
): string {
  const { label } = provider;
  switch (withdrawal) {
    case "revoked":
      return `Mailwarden did not keep the permission ${label} gave: it asked ${label} to withdraw it, and ${label} confirmed.`;
    case "failed":
      return `Mailwarden discarded the permission ${label} gave and asked ${label} to withdraw it, but ${label} did not confirm; to be sure, remove Mailwarden's access ${manualRemoval(provider)}.`;
    case "not_supported":
      return provider.id === "microsoft"
        ? `Mailwarden discarded the tokens ${label} gave, but ${label} offers apps no way to withdraw a permission, so the consent stays until it is removed by hand: by ${MICROSOFT_CONSENT_REMOVAL}.`
        : `Mailwarden discarded the tokens ${label} gave, but ${label} offers apps no way to withdraw a permission, so the consent stays until you remove Mailwarden's access ${manualRemoval(provider)}.`;
    case "kept_in_use":
      return `Mailwarden discarded the tokens ${label} gave but did not ask ${label} to withdraw the permission: ${label} would end every permission of that account at once, and a mailbox connected to Mailwarden still uses the account.`;
  }
}
