/**
 * `GET /v1/voices`: every synthesis voice with the one naming scheme sessions, `say`, jobs and batches accept
 * (protocol/voices.ts). The catalogue is static (compiled into the engines), so the edge serves it without
 * asking an origin. Public, like /openapi.json: it names no tenant data.
 */
import { voiceList } from "../../protocol/voices.ts";
import type { EdgeApp, EdgeContext } from "../context.ts";

export function voiceRoutes(app: EdgeApp, ctx: EdgeContext): void {
  const body = JSON.stringify(voiceList({ engine: ctx.config.TTS_ENGINE, voice: ctx.config.TTS_VOICE }));
  app.get("/v1/voices", (c) => {
    c.header("cache-control", "public, max-age=300");
    return c.body(body, 200, { "content-type": "application/json" });
  });
}
