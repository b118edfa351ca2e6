import type { Role } from "@/db/schema";

// Type-only, so client components may import roles from here without pulling in the schema.
export type { Role };

export const ROLES = ["owner", "admin", "sender", "compliance"] as const satisfies readonly Role[];

// Who may do what; pages and actions name one of these, never a list of their own.
export const CAN = {
  manageMembers: ["owner", "admin"],
  manageMailboxes: ["owner", "admin"],
  manageApiKeys: ["owner", "admin"],
  manageSettings: ["owner", "admin"],
  readAudit: ["owner", "admin", "compliance"],
  // Data subject exports and erasures: a compliance duty, not an administrator's. Admins manage
  // people and mailboxes but do not read or erase a person's whole record.
  handlePrivacy: ["owner", "compliance"],
  handleIncidents: ["owner", "admin"],
  // Webhook endpoints send the organisation's mail outcomes to a URL of the caller's choosing and
  // hold signing secrets: the same people who hold API keys.
  manageWebhooks: ["owner", "admin"],
  // The Security page: compliance officers read it too (it shows posture, never a secret);
  // changing what it records is manageSettings.
  readSecurity: ["owner", "admin", "compliance"],
  send: ["owner", "admin", "sender"],
  view: ["owner", "admin", "sender", "compliance"],
} as const satisfies Record<string, readonly Role[]>;

export type Permission = keyof typeof CAN;

export function hasPermission(role: Role, permission: Permission): boolean {
  return (CAN[permission] as readonly Role[]).includes(role);
}

export const ROLE_LABELS: Record<Role, string> = {
  owner: "Owner",
  admin: "Admin",
  sender: "Sender",
  compliance: "Compliance officer",
};
