import { apiKeyContext } from "@/lib/mail/api-keys";
import { messageStatusResponse, sendOutcomeResponse } from "@/lib/mail/http";
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
    const ctx = await apiKeyContext(request);
    if (!ctx) return sendOutcomeResponse({ kind: "unauthorized" });
    const { id } = await params;
    return messageStatusResponse(await readMessageStatus(ctx, id));
  } catch (error) {
    console.error(
      `[send] unexpected ${(error as Error)?.name ?? "error"} in GET /api/v1/messages/{id}`,
    );
    return problemResponse(500, "Internal error", []);
  }
}
