// One rule for whether a key may still be used, for the bearer check and the send path's
// fallback read: an expired key is refused exactly like a revoked one. (The send path's
// one-statement check in db/queries/mailboxes.ts says the same in SQL.)

export function isKeyUsable(
  key: { revokedAt: Date | null; expiresAt: Date | null } | null,
  now: Date = new Date(),
): boolean {
  if (!key || key.revokedAt !== null) return false;
  return key.expiresAt === null || key.expiresAt > now;
}
