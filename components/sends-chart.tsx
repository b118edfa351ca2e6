type Day = { day: string; sent: number; failed: number };

/** Sends per day as bars; numbers are in the labels, so colour is never the only signal. */
export function SendsChart({ days }: { days: Day[] }) {
  const max = Math.max(1, ...days.map((d) => d.sent + d.failed));
  return (
    <figure>
      <div
        className="flex h-32 items-end gap-1"
        role="img"
        aria-label="Messages per day, last 14 days"
      >
        {days.map((d) => (
          <div
            key={d.day}
            className="flex h-full flex-1 flex-col justify-end"
            title={`${d.day}: ${d.sent} sent, ${d.failed} failed`}
          >
            <div className="bg-red-400" style={{ height: `${(d.failed / max) * 100}%` }} />
            <div className="bg-brand-600" style={{ height: `${(d.sent / max) * 100}%` }} />
          </div>
        ))}
      </div>
      <figcaption className="mt-2 flex justify-between text-slate-500 text-xs">
        <span>{days[0]?.day}</span>
        <span>
          {days.reduce((n, d) => n + d.sent, 0)} sent · {days.reduce((n, d) => n + d.failed, 0)}{" "}
          failed
        </span>
        <span>{days.at(-1)?.day}</span>
      </figcaption>
    </figure>
  );
}
