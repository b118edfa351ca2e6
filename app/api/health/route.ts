import { pingDb } from "@/db";
import { env } from "@/lib/env";
import packageJson from "@/package.json";

export const dynamic = "force-dynamic";

export async function GET() {
  const database = await pingDb();
  const body = {
    status: database.ok ? "ok" : "degraded",
    mode: env().isDemo ? "demo" : "production",
    version: packageJson.version,
    database: database.ok ? { ok: true, driver: database.driver } : { ok: false },
  };
  return Response.json(body, {
    status: database.ok ? 200 : 503,
    headers: { "Cache-Control": "no-store" },
  });
}
