import "server-only";
import type { Role } from "@/db/schema";
import { AuditPersonalFieldsError } from "@/lib/audit/redact";

// Why an officer's erasure is refused: as a code (audited) and in words (shown to them).

const ERASURE_REFUSALS = {
  last_owner:
    "This person is the organisation's last owner. Make someone else an owner first, then erase.",
  owner_only:
    "Erasing removes this person's membership, and only an owner removes an owner or an administrator. Ask an owner to erase them.",
  audit_damaged:
    "Nothing was erased: the audit log has events naming this person whose personal fields were edited outside the app, and erasing would hide that. Ask an operator to run audit:verify and restore them, then erase.",
} as const;

/** An erasure that met edited audit events (lib/audit/redact.ts) is refused, naming them. */
export function auditDamageRefusal(error: unknown) {
  if (!(error instanceof AuditPersonalFieldsError)) throw error;
  const seqs = error.events.map((e) => `${e.chain ? "" : "system log "}seq ${e.seq}`).join(", ");
  const message = `${ERASURE_REFUSALS.audit_damaged} Events: ${seqs}.`;
  return { code: "audit_damaged" as const, message, events: error.events };
}

/** Why this officer may not erase the subject now, as a code and in words; null when they may. */
export function erasureRefusal(
  summary: { role: string | null; ownerCount: number },
  officerRole: Role | null,
): { code: keyof typeof ERASURE_REFUSALS; message: string } | null {
  const code =
    summary.role === "owner" && summary.ownerCount <= 1
      ? "last_owner"
      : (summary.role === "owner" || summary.role === "admin") && officerRole !== "owner"
        ? "owner_only"
        : null;
  return code ? { code, message: ERASURE_REFUSALS[code] } : null;
}
