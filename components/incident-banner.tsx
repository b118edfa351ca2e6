import Link from "next/link";

export type BannerSwitch = {
  kind: string;
  scope: "global" | "organization";
  reason: string;
};

const WHAT: Record<string, string> = {
  pause_sending: "Sending is paused",
  block_connections: "Connecting mailboxes is blocked",
};

// Shown above every signed-in page while an incident switch is on, so nobody wonders why mail
// stopped. The reason is the one the administrator gave.
export function IncidentBanner({
  switches,
  pausedMailboxes,
  canManage,
}: {
  switches: BannerSwitch[];
  pausedMailboxes: number;
  canManage: boolean;
}) {
  if (switches.length === 0 && pausedMailboxes === 0) return null;
  return (
    <div
      role="alert"
      aria-label="Incident switches"
      className="mb-4 space-y-1 rounded-md border border-amber-400 bg-amber-50 p-3 text-amber-950 text-sm"
    >
      {switches.map((s) => (
        <p key={`${s.kind}:${s.scope}`}>
          <strong>
            {WHAT[s.kind] ?? s.kind}
            {s.scope === "global" ? " for every organisation" : ""}.
          </strong>{" "}
          Reason: {s.reason}
        </p>
      ))}
      {pausedMailboxes > 0 && (
        <p>
          <strong>
            {pausedMailboxes} mailbox{pausedMailboxes === 1 ? " is" : "es are"} paused.
          </strong>{" "}
          <Link className="underline" href="/mailboxes">
            See the mailboxes
          </Link>
        </p>
      )}
      {canManage && (
        <p>
          <Link className="underline" href="/incidents">
            Incident switches
          </Link>{" "}
          ·{" "}
          <Link className="underline" href="/runbook">
            Runbook
          </Link>
        </p>
      )}
    </div>
  );
}
