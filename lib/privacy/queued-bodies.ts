import "server-only";
import { and, asc, eq, gt, inArray, isNotNull } from "drizzle-orm";
import type { DbOrTx } from "@/db";
import { personPattern } from "@/db/queries/address-match";
import { messages } from "@/db/schema";
import { DecryptionError, decryptField } from "@/lib/crypto";
import { keyring } from "@/lib/crypto/runtime";
import { BODY_FIELD } from "@/lib/mail/send-queued";

// A queued message keeps its request sealed until it is sent (lib/mail/queued.ts). The erasure
// rewrites the row's subject, but the message would go out from the sealed body, naming the
// person in its Reply-To, subject or text. Only the application can read a body, so the
// organisation's waiting bodies are opened here, a page at a time, and those naming the person
// (whole address, or full name as whole words) are cancelled with the rest of what the erasure
// stops. A body no key can open is left: it fails at its attempt without being sent.

const PAGE = 200;

export async function cancelQueuedBodiesNaming(
  db: DbOrTx,
  { orgId, email, name }: { orgId: string; email: string; name: string | null },
): Promise<number> {
  const pattern = new RegExp(personPattern(email, name), "i");
  const naming: string[] = [];
  let after = "";
  for (;;) {
    const page = await db
      .select({ id: messages.id, body: messages.bodySealed })
      .from(messages)
      .where(
        and(
          eq(messages.orgId, orgId),
          isNotNull(messages.nextAttemptAt),
          inArray(messages.status, ["queued", "retrying"]),
          isNotNull(messages.bodySealed),
          gt(messages.id, after),
        ),
      )
      .orderBy(asc(messages.id))
      .limit(PAGE);
    for (const row of page) {
      if (row.body !== null && pattern.test(openBody(row.id, row.body))) naming.push(row.id);
    }
    if (page.length < PAGE) break;
    after = page.at(-1)?.id ?? after;
  }
  if (naming.length === 0) return 0;
  const cancelled = await db
    .update(messages)
    .set({
      status: "cancelled",
      nextAttemptAt: null,
      bodySealed: null,
      lastError: "Cancelled: its text named a person whose personal data was erased.",
    })
    .where(
      and(
        eq(messages.orgId, orgId),
        inArray(messages.id, naming),
        inArray(messages.status, ["queued", "retrying"]),
      ),
    )
    .returning({ id: messages.id });
  return cancelled.length;
}

function openBody(rowId: string, sealed: string): string {
  try {
    return decryptField(keyring(), sealed, { ...BODY_FIELD, rowId });
  } catch (error) {
    if (error instanceof DecryptionError) return "";
    throw error;
  }
}
