/**
 * `GET /v1/engines`: which speech engines the live origins run, what each understands and how to get the
 * others. Origins publish their engine descriptors in their node row at registration (the edge never asks an
 * origin process and never imports origin code).
 */
import { listNodes } from "../../db/nodes.ts";
import type { EnginesResponse } from "../../protocol/engines.ts";
import type { EdgeApp, EdgeContext } from "../context.ts";
import { guard } from "../context.ts";

/** Engines of the live, non-draining origins (the ones new sessions can land on). */
export async function liveEngines(ctx: EdgeContext): Promise<EnginesResponse> {
  const nodes = await listNodes(ctx.database, ctx.config.NODE_TIMEOUT_MS);
  return {
    origins: nodes.filter((n) => n.alive && !n.draining).map((n) => ({ node_id: n.id, engines: n.engines })),
  };
}

export function engineRoutes(app: EdgeApp, ctx: EdgeContext): void {
  app.get("/v1/engines", guard(ctx, "sessions"), async (c) => c.json(await liveEngines(ctx)));
}
