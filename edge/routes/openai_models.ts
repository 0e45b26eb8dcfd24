/**
 * GET /v1/models (OpenAI's list shape) and GET /v1/voices (every voice of the origins' synthesis engines,
 * asked of a live origin: the edge loads no engine). Any valid credential may read them.
 *
 * Model ids: the OpenAI names Parley answers to (whisper-1, gpt-4o-transcribe, gpt-4o-mini-transcribe → the
 * configured recognizer; tts-1, tts-1-hd, gpt-4o-mini-tts → the configured synthesizer) and the engine names.
 */
import type { MiddlewareHandler } from "hono";
import type { EdgeVariables } from "../auth.ts";
import { pickNodes } from "../../db/nodes.ts";
import { ApiError } from "../../lib/errors.ts";
import { TTS_ENGINES } from "../../protocol/engines.ts";
import {
  INTERNAL_VOICES_PATH,
  OPENAI_SPEECH_MODELS,
  OPENAI_TRANSCRIBE_MODELS,
  type OpenAiModel,
  type OpenAiVoice,
} from "../../protocol/openai.ts";
import type { EdgeApp, EdgeContext } from "../context.ts";
import { OriginUnreachableError } from "../origin_client.ts";

/** Models are as old as the process that serves them (OpenAI's `created` is a Unix time in seconds). */
const CREATED = Math.floor(Date.now() / 1000);

export function modelList(ctx: EdgeContext): OpenAiModel[] {
  const ids = [
    ...OPENAI_TRANSCRIBE_MODELS,
    ...OPENAI_SPEECH_MODELS,
    ctx.config.ASR_ENGINE,
    ...new Set([ctx.config.TTS_ENGINE, ...TTS_ENGINES.filter((e) => e === "espeak")]),
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

  app.get("/v1/voices", auth, async (c) => {
    const nodes = await pickNodes(ctx.database, ctx.config.NODE_TIMEOUT_MS);
    for (const n of nodes.slice(0, 3)) {
      try {
        const res = await ctx.origins.call(n.url, "GET", INTERNAL_VOICES_PATH, {
          requestId: c.get("requestId"),
        });
        if (res.status !== 200) continue;
        const voices = res.json<{ voices: OpenAiVoice[] }>().voices;
        // the configured engine's voices may also be named bare
        return c.json({
          object: "list",
          default: `${ctx.config.TTS_ENGINE}:${ctx.config.TTS_VOICE}`,
          data: voices,
        });
      } catch (e) {
        if (!(e instanceof OriginUnreachableError)) throw e;
      }
    }
    throw new ApiError(503, "no_origin_available", "no origin node can list voices now", {
      "retry-after": "2",
    });
  });
}
