/**
 * The OpenAI-compatible audio API as one route group: speech, transcriptions and models, all answering errors
 * in OpenAI's shape (edge/openai_errors.ts). Wire types and id mappings: protocol/openai.ts.
 */
import type { EdgeApp, EdgeContext } from "../context.ts";
import { openAiErrors } from "../openai_errors.ts";
import { openAiModelRoutes } from "./openai_models.ts";
import { openAiSpeechRoutes } from "./openai_speech.ts";
import { openAiTranscriptionRoutes } from "./openai_transcriptions.ts";

export function openAiRoutes(app: EdgeApp, ctx: EdgeContext): void {
  for (const path of ["/v1/audio/*", "/v1/models", "/v1/models/*"]) {
    app.use(path, openAiErrors());
  }
  openAiModelRoutes(app, ctx);
  openAiSpeechRoutes(app, ctx);
  openAiTranscriptionRoutes(app, ctx);
}
