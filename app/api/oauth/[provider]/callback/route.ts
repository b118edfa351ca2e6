import { type NextRequest, NextResponse } from "next/server";
import { requestInfoFrom } from "@/lib/auth/request";
import { getSessionContext } from "@/lib/auth/session";
import { completeConnect } from "@/lib/oauth/callback";

export const dynamic = "force-dynamic";

// One callback per provider (a distinct redirect URI each, RFC 9700 mix-up defence). The page
// it sends the person to explains the outcome; no provider text is reflected into it.
export async function GET(
  request: NextRequest,
  { params }: { params: Promise<{ provider: string }> },
) {
  const { provider } = await params;
  const session = await getSessionContext();
  const result = await completeConnect({
    providerId: provider,
    callbackUrl: new URL(request.url),
    userId: session?.user.id ?? null,
    request: requestInfoFrom(request.headers),
  });
  const target = new URL(`/mailboxes/connect/${encodeURIComponent(provider)}`, request.url);
  if (result.kind === "connected") {
    const done = new URL("/mailboxes", request.url);
    done.searchParams.set("connected", result.mailboxId);
    return NextResponse.redirect(done, 303);
  }
  target.searchParams.set("result", result.kind);
  if (result.kind === "missing_scope") target.searchParams.set("missing", result.missing.join(" "));
  if (result.kind === "refused") {
    target.searchParams.set("reason", result.reason);
    if (result.mailboxId) target.searchParams.set("mailbox", result.mailboxId);
  }
  return NextResponse.redirect(target, 303);
}
