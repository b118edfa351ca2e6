import type { Role } from "@/db/schema";
import { hasPermission, type Permission } from "@/lib/auth/roles";

export type NavItem = {
  href: string;
  label: string;
  permission: Permission;
  demoOnly?: boolean;
  /** Things waiting for the person on that page, shown beside the label. */
  count?: number;
};

export const NAV: NavItem[] = [
  { href: "/", label: "Overview", permission: "view" },
  { href: "/mailboxes", label: "Mailboxes", permission: "view" },
  { href: "/send", label: "Send a test message", permission: "send" },
  { href: "/messages", label: "Messages", permission: "view" },
  { href: "/api-keys", label: "API keys", permission: "manageApiKeys" },
  { href: "/webhooks", label: "Webhooks", permission: "manageWebhooks" },
  { href: "/demo-inbox", label: "Demo inbox", permission: "view", demoOnly: true },
  { href: "/members", label: "Members", permission: "manageMembers" },
  { href: "/activity", label: "Activity log", permission: "readAudit" },
  { href: "/privacy", label: "Data requests", permission: "handlePrivacy" },
  { href: "/incidents", label: "Incidents", permission: "handleIncidents" },
  { href: "/runbook", label: "Runbook", permission: "view" },
  { href: "/security", label: "Security", permission: "readSecurity" },
  { href: "/notifications", label: "Notifications", permission: "manageSettings" },
  { href: "/invitations", label: "Invitations", permission: "view" },
  { href: "/profile", label: "Your data", permission: "view" },
];

export function navFor(
  role: Role,
  { isDemo, pendingInvitations = 0 }: { isDemo: boolean; pendingInvitations?: number },
): NavItem[] {
  return NAV.filter(
    (item) => hasPermission(role, item.permission) && (isDemo || !item.demoOnly),
  ).map((item) =>
    item.href === "/invitations" && pendingInvitations > 0
      ? { ...item, count: pendingInvitations }
      : item,
  );
}
