import Link from "next/link";

export default function Forbidden() {
  return (
    <main className="mx-auto max-w-lg px-4 py-24 text-center">
      <h1 className="font-semibold text-2xl">Not allowed</h1>
      <p className="mt-2 text-slate-600">
        Your role in this organisation does not give access to this page. Ask an owner or admin if
        you need it. The system events of the activity log are for the operators of this deployment
        only. The attempt has been recorded in the activity log.
      </p>
      <Link href="/" className="mt-6 inline-block text-brand-600 underline">
        Back to the overview
      </Link>
    </main>
  );
}
