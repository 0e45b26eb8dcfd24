/** Liveness, readiness and Prometheus metrics for the edge. */
import type { EdgeApp, EdgeContext } from "../context.ts";
import { registry } from "../../lib/metrics.ts";
import { databaseChecks } from "../../db/client.ts";

export function opsRoutes(app: EdgeApp, ctx: EdgeContext): void {
  app.get("/healthz", (c) => c.json({ ok: true, role: "edge" }));
  app.get("/readyz", async (c) => {
    const checks = await databaseChecks(ctx.database);
    const ok = Object.values(checks).every(Boolean);
    return c.json({ ok, role: "edge", checks }, ok ? 200 : 503);
  });
  app.get("/metrics", (c) => c.text(registry.render(), 200, { "content-type": "text/plain; version=0.0.4" }));
}
