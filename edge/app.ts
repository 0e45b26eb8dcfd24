/** The edge's Hono app: public API, ops endpoints, the web client. Flat: each route group registers itself. */
import { Hono } from "hono";
import { installErrorHandling, observe } from "../lib/http.ts";
import type { EdgeVariables } from "./auth.ts";
import type { EdgeContext } from "./context.ts";
import { adminRoutes } from "./routes/admin.ts";
import { engineRoutes } from "./routes/engines.ts";
import { opsRoutes } from "./routes/ops.ts";
import { listenRoutes } from "./routes/listen.ts";
import { sessionRoutes } from "./routes/sessions.ts";
import { sipRoutes } from "./routes/sip.ts";
import { tokenRoutes } from "./routes/tokens.ts";
import { databaseUnavailableResponse } from "./unavailable.ts";
import { originUnreachableResponse } from "./origin_client.ts";
import { roomRoutes } from "./routes/rooms.ts";
import { trackRoutes } from "./routes/tracks.ts";
import { voiceRoutes } from "./routes/voices.ts";

/** Extra route groups (TTS jobs, history, web client) register through this hook as they land. */
export type RouteGroup = (app: Hono<{ Variables: EdgeVariables }>, ctx: EdgeContext) => void;

export function createEdgeApp(
  ctx: EdgeContext,
  extra: RouteGroup[] = [],
): Hono<{ Variables: EdgeVariables }> {
  const app = new Hono<{ Variables: EdgeVariables }>();
  app.use("*", observe("edge", ctx.log));
  installErrorHandling(
    app,
    ctx.log,
    (err) => databaseUnavailableResponse(err) ?? originUnreachableResponse(err),
  );
  opsRoutes(app, ctx);
  tokenRoutes(app, ctx);
  adminRoutes(app, ctx);
  sessionRoutes(app, ctx);
  roomRoutes(app, ctx);
  trackRoutes(app, ctx);
  engineRoutes(app, ctx);
  sipRoutes(app, ctx);
  listenRoutes(app, ctx);
  voiceRoutes(app, ctx);
  for (const group of extra) group(app, ctx);
  return app;
}
