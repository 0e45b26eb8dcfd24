/**
 * GET /v1/models (OpenAI's list shape). Any valid credential may read it. GET /v1/voices, in the same list
 * shape, is edge/routes/voices.ts (one list for Parley's and OpenAI clients).
 *
 * Model ids: the OpenAI names Parley answers to (whisper-1, gpt-4o-transcribe, gpt-4o-mini-transcribe → the
 * configured recognizer; tts-1, tts-1-hd, gpt-4o-mini-tts → the configured synthesizer) and the engine names.
 */
import type { MiddlewareHandler } from "hono";
import type { EdgeVariables } from "../auth.ts";
import { ApiError } from "../../lib/errors.ts";
import { TTS_ENGINES } from "../../protocol/engines.ts";
import { OPENAI_SPEECH_MODELS, OPENAI_TRANSCRIBE_MODELS, type OpenAiModel } from "../../protocol/openai.ts";
import type { EdgeApp, EdgeContext } from "../context.ts";

/** Models are as old as the process that serves them (OpenAI's `created` is a Unix time in seconds). */
const CREATED = Math.floor(Date.now() / 1000);

export function modelList(ctx: EdgeContext): OpenAiModel[] {
  const ids = [
    ...OPENAI_TRANSCRIBE_MODELS,
    ...OPENAI_SPEECH_MODELS,
    ctx.config.ASR_ENGINE,
    ...new Set([ctx.config.TTS_ENGINE, ...TTS_ENGINES.filter((e) => e !== "vits")]), // both need no model files
  ];
  return ids.map((id) => ({ id, object: "model", created: CREATED, owned_by: "parley" }));
}

export function openAiModelRoutes(app: EdgeApp, ctx: EdgeContext): void {
  const auth: MiddlewareHandler<{ Variables: EdgeVariables }> = async (c, next) => {
    c.set("principal", await ctx.auth.authenticate(c.req.header("authorization")));
    await next();
  };

  app.get("/v1/models", auth, (c) => c.json({ object: "list", data: modelList(ctx) }));

  app.get("/v1/models/:id", auth, (c) => {
    const m = modelList(ctx).find((x) => x.id === c.req.param("id"));
    if (!m) throw new ApiError(404, "not_found", `no model "${c.req.param("id").slice(0, 64)}"`);
    return c.json(m);
  });
}
