export type JobView = {
  status: string;
  total: number;
  finished: number;
  counts: Array<{ label: string; count: number }>;
  /** What went wrong, in plain words: items that failed, or an interruption it resumes from. */
  problem?: string | null;
};

// Server-rendered progress of a long job; the page re-renders it while the job runs.
export function JobProgress({ job, label }: { job: JobView; label: string }) {
  const percent = job.total === 0 ? 100 : Math.floor((job.finished / job.total) * 100);
  return (
    <div className="space-y-2">
      <div className="flex items-center justify-between text-sm">
        <span>
          {label}: <strong>{job.status}</strong>
        </span>
        <span>
          {job.finished} / {job.total}
        </span>
      </div>
      {/* A native progress element: no inline style, so a strict style-src allows it. */}
      <progress
        aria-label={label}
        aria-valuetext={`${percent}%`}
        value={job.total === 0 ? 1 : job.finished}
        max={Math.max(job.total, 1)}
        className="h-3 w-full accent-brand-600"
      />
      <p className="text-slate-600 text-sm">
        {percent}%{job.counts.map((c) => ` · ${c.label}: ${c.count}`).join("")}
      </p>
      {job.problem && (
        <p role="status" className="text-red-700 text-sm">
          {job.problem}
        </p>
      )}
    </div>
  );
}
