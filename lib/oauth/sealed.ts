import "server-only";
import { decryptField, encryptField } from "@/lib/crypto";
import { keyring } from "@/lib/crypto/runtime";

// The encrypted cells of the token lifecycle. The associated data names table, column and row,
// so a value copied to another row or column does not decrypt (ARCHITECTURE.md, Security
// practices 4).

type MailboxTokenColumn = "access_token" | "refresh_token";

export function sealMailboxToken(mailboxId: string, column: MailboxTokenColumn, token: string) {
  return encryptField(keyring(), token, { table: "mailboxes", column, rowId: mailboxId });
}

export function openMailboxToken(mailboxId: string, column: MailboxTokenColumn, value: string) {
  return decryptField(keyring(), value, { table: "mailboxes", column, rowId: mailboxId });
}

export function sealCodeVerifier(transactionId: string, verifier: string) {
  return encryptField(keyring(), verifier, {
    table: "oauth_transactions",
    column: "code_verifier",
    rowId: transactionId,
  });
}

export function openCodeVerifier(transactionId: string, value: string) {
  return decryptField(keyring(), value, {
    table: "oauth_transactions",
    column: "code_verifier",
    rowId: transactionId,
  });
}

export function currentKeyId(): string {
  return keyring().current.id;
}
