import { env } from "@/lib/env";
import { checkHealth } from "@/lib/health";
import packageJson from "@/package.json";

export const dynamic = "force-dynamic";

/** 200 when every dependency that requests need answers, else 503 naming the one that does not. */
export async function GET() {
  const health = await checkHealth();
  const body = {
    status: health.ok ? "ok" : "degraded",
    mode: env().isDemo ? "demo" : "production",
    version: packageJson.version,
    dependencies: Object.fromEntries(
      health.dependencies.map((d) => [d.name, { ok: d.ok, detail: d.detail }]),
    ),
  };
  return Response.json(body, {
    status: health.ok ? 200 : 503,
    headers: { "Cache-Control": "no-store", ...(health.ok ? {} : { "Retry-After": "30" }) },
  });
}
