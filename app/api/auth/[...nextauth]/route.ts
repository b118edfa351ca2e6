import type { NextRequest } from "next/server";
import { handlers } from "@/lib/auth/config";
import { refuseAuthRequest } from "@/lib/auth/endpoint-limits";

export async function GET(request: NextRequest) {
  return (await refuseAuthRequest(request)) ?? handlers.GET(request);
}

export async function POST(request: NextRequest) {
  return (await refuseAuthRequest(request)) ?? handlers.POST(request);
}
