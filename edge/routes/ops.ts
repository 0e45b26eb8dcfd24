/** Liveness, readiness and Prometheus metrics for the edge. */
import type { EdgeApp, EdgeContext } from "../context.ts";
import { registry } from "../../lib/metrics.ts";
import { databaseChecks } from "../../db/client.ts";
import { liveEngines } from "./engines.ts";

export function opsRoutes(app: EdgeApp, ctx: EdgeContext): void {
  app.get("/healthz", (c) => c.json({ ok: true, role: "edge" }));
  app.get("/readyz", async (c) => {
    const checks: Record<string, boolean> = await databaseChecks(ctx.database);
    for (const [name, check] of ctx.readyChecks) checks[name] = check();
    const ok = Object.values(checks).every(Boolean);
    // which recognizer new sessions get (per live origin): what it understands
    const recognizers = checks.database
      ? (await liveEngines(ctx).catch(() => ({ origins: [] }))).origins.map((o) => {
        const asr = o.engines.find((e) => e.kind === "asr" && e.active);
        return { node_id: o.node_id, name: asr?.name, understands: asr?.understands };
      })
      : [];
    return c.json({ ok, role: "edge", checks, recognizers }, ok ? 200 : 503);
  });
  app.get("/metrics", (c) => c.text(registry.render(), 200, { "content-type": "text/plain; version=0.0.4" }));
}
