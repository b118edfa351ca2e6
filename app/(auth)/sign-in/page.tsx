import { redirect } from "next/navigation";
import { Button } from "@/components/ui/button";
import { Card } from "@/components/ui/card";
import { addressLimitKey } from "@/lib/auth/client-address";
import { signIn, signInProviderList } from "@/lib/auth/config";
import { requestInfo } from "@/lib/auth/request";
import { getSessionContext } from "@/lib/auth/session";
import { env } from "@/lib/env";
import {
  enforceRateLimit,
  LimitStoreUnavailableError,
  RateLimitedError,
} from "@/lib/ratelimit/runtime";

async function signInWith(providerId: string) {
  "use server";
  try {
    await enforceRateLimit("signIn", [addressLimitKey((await requestInfo()).ip)]);
  } catch (error) {
    if (error instanceof RateLimitedError) redirect("/sign-in?error=RateLimited");
    if (error instanceof LimitStoreUnavailableError) redirect("/sign-in?error=Unavailable");
    throw error;
  }
  await signIn(providerId, { redirectTo: "/" });
}

export const dynamic = "force-dynamic";
export const metadata = { title: "Sign in" };

const ERRORS: Record<string, string> = {
  AccessDenied: "The sign-in was cancelled or refused at the provider.",
  OAuthAccountNotLinked: "This email is already linked to another sign-in method.",
  AccountLinkRefused:
    "You are already signed in. Another sign-in account cannot be added to yours: sign out first to sign in with it.",
  Configuration: "Sign-in is not configured correctly. An administrator must check the settings.",
  RateLimited: "Too many sign-in attempts. Wait a minute and try again.",
  Unavailable:
    "Sign-in is temporarily unavailable. Nothing is wrong with your account: try again in a minute, and tell your administrator if it lasts.",
};

export default async function SignInPage({
  searchParams,
}: {
  searchParams: Promise<{ error?: string }>;
}) {
  const { error } = await searchParams;
  // A refused sign-in of someone still signed in shows its reason here instead of the dashboard.
  if (!error && (await getSessionContext())) redirect("/");
  const providers = signInProviderList();
  const { isDemo } = env();

  return (
    <main className="flex min-h-screen items-center justify-center bg-slate-50 px-4">
      <Card className="w-full max-w-sm">
        <h1 className="font-semibold text-xl">Sign in to Mailwarden</h1>
        <p className="mt-1 text-slate-600 text-sm">
          Sign-in asks only for your name and email address. Mail access is asked for separately,
          when an administrator connects a mailbox.
        </p>
        {error && (
          <p role="alert" className="mt-4 rounded bg-red-50 p-2 text-red-800 text-sm">
            {ERRORS[error] ?? "Sign-in failed. Try again."}
          </p>
        )}
        <div className="mt-6 space-y-3">
          {providers.map((provider) => (
            <form key={provider.id} action={signInWith.bind(null, provider.id)}>
              <Button type="submit" className="w-full">
                Sign in with {provider.name}
              </Button>
            </form>
          ))}
          {providers.length === 0 && (
            <p className="text-sm">No sign-in provider is configured. See the README.</p>
          )}
        </div>
        {isDemo && (
          <p className="mt-6 text-slate-500 text-xs">
            Demo mode: the demo provider accepts any email address without a password.
          </p>
        )}
      </Card>
    </main>
  );
}
