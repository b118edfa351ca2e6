import { auditRefusedApiKey } from "@/lib/audit/refusals";
import { requestInfoFrom } from "@/lib/auth/request";
import { apiKeyContext } from "@/lib/mail/api-keys";
import { bearerOf, messageStatusResponse, sendOutcomeResponse } from "@/lib/mail/http";
import { readMessageStatus } from "@/lib/mail/message-status";
import { problemResponse } from "@/lib/mail/problem";

// GET /api/v1/messages/{id}: the status of a message (ARCHITECTURE.md, "Queued messages"), for
// the same API keys as POST /api/v1/messages. Another organisation's id, or a message from a
// mailbox the key may not use, reads exactly like an unknown id.

export const dynamic = "force-dynamic";
export const runtime = "nodejs";

export async function GET(
  request: Request,
  { params }: { params: Promise<{ id: string }> },
): Promise<Response> {
  try {
    const token = bearerOf(request);
    const info = requestInfoFrom(request.headers);
    const ctx = token ? await apiKeyContext(token, info) : null;
    if (!ctx) {
      await auditRefusedApiKey(token, info);
      return sendOutcomeResponse({ kind: "unauthorized" });
    }
    const { id } = await params;
    return messageStatusResponse(await readMessageStatus(ctx, id));
  } catch (error) {
    console.error(
      `[send] unexpected ${(error as Error)?.name ?? "error"} in GET /api/v1/messages/{id}`,
    );
    return problemResponse(500, "Internal error", []);
  }
}
