import Link from "next/link";

export default function NotFound() {
  return (
    <main className="mx-auto max-w-lg px-4 py-24 text-center">
      <h1 className="font-semibold text-2xl">Page not found</h1>
      <Link href="/" className="mt-6 inline-block text-brand-600 underline">
        Back to the overview
      </Link>
    </main>
  );
}
