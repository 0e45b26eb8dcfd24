/** Liveness, readiness and Prometheus metrics for the edge. */
import type { EdgeApp, EdgeContext } from "../context.ts";
import { registry } from "../../lib/metrics.ts";
import { databaseChecks } from "../../db/client.ts";

export function opsRoutes(app: EdgeApp, ctx: EdgeContext): void {
  app.get("/healthz", (c) => c.json({ ok: true, role: "edge" }));
  app.get("/readyz", async (c) => {
    const checks: Record<string, boolean> = await databaseChecks(ctx.database);
    for (const [name, check] of ctx.readyChecks) checks[name] = check();
    const ok = Object.values(checks).every(Boolean);
    return c.json({ ok, role: "edge", checks }, ok ? 200 : 503);
  });
  app.get("/metrics", (c) => c.text(registry.render(), 200, { "content-type": "text/plain; version=0.0.4" }));
}
