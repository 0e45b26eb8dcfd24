/** OpenAPI operations of the OpenAI-compatible routes (edge/routes/openai*.ts), each with curl and SDK examples. */
import { OPENAI_VOICES } from "../protocol/voices.ts";
import type { Operation } from "./openapi.ts";
import {
  OPENAI_SPEECH_MODELS,
  OPENAI_TRANSCRIBE_MODELS,
  SPEECH_FORMATS,
  SPEECH_MAX_INPUT,
  SPEECH_MAX_SPEED,
  SPEECH_MIN_SPEED,
  TRANSCRIPTION_FORMATS,
} from "../protocol/openai.ts";

const ERRORS =
  "Errors use OpenAI's shape `{error:{message,type,param,code}}`, a superset of Parley's `{error:{code,message}}`.";

const OpenAiErrorSchema = {
  type: "object",
  properties: {
    error: {
      type: "object",
      properties: {
        message: { type: "string" },
        type: { type: "string" },
        param: { type: ["string", "null"] },
        code: { type: "string" },
      },
      required: ["message", "type", "param", "code"],
    },
  },
} as const;

export function openAiOperations(): Operation[] {
  return [
    {
      method: "post",
      path: "/v1/audio/transcriptions",
      tag: "openai",
      summary: "Transcribe an audio file (OpenAI-compatible)",
      description: [
        "Multipart form as OpenAI defines it. The file (WAV, MP3, FLAC, Ogg Opus, Ogg Vorbis; sniffed from the",
        "bytes; ≤ 25 MB and ≤ `TRANSCRIBE_MAX_SECONDS`, else 413) runs on the least-loaded origin through the",
        "same VAD segmentation and recognizer as live sessions, behind live work. `model`: " +
        `${OPENAI_TRANSCRIBE_MODELS.join(", ")} or the engine name (the configured recognizer).`,
        "`prompt` and `temperature` are accepted and ignored. `verbose_json` with",
        "`timestamp_granularities[]=word` has `words` from the engine's word alignment, never invented (when a",
        "segment has none, `x-parley-words` says why). `stream=true` answers SSE `transcript.text.delta` /",
        "`transcript.text.done`. `store=true` keeps the transcription in history as a session of kind `file`",
        "(transcript pages, exports, search), its id in `x-parley-session-id`. " + ERRORS,
        "",
        "```sh",
        'curl -H "Authorization: Bearer $KEY" -F file=@speech.mp3 -F model=whisper-1 \\',
        "  -F response_format=verbose_json $PARLEY/v1/audio/transcriptions",
        "```",
        "```js",
        'const client = new OpenAI({ apiKey: KEY, baseURL: "http://localhost:8080/v1" });',
        'const r = await client.audio.transcriptions.create({ file: fs.createReadStream("speech.mp3"), model: "whisper-1" });',
        "```",
      ].join("\n"),
      scope: "sessions",
      body: {
        required: true,
        content: {
          "multipart/form-data": {
            type: "object",
            required: ["file", "model"],
            properties: {
              file: { type: "string", contentMediaType: "application/octet-stream" },
              model: { type: "string", examples: ["whisper-1"] },
              language: { type: "string", description: "ISO-639-1" },
              prompt: { type: "string", description: "accepted, ignored" },
              response_format: { type: "string", enum: [...TRANSCRIPTION_FORMATS], default: "json" },
              temperature: { type: "number", minimum: 0, maximum: 1, description: "accepted, ignored" },
              "timestamp_granularities[]": {
                type: "array",
                items: { type: "string", enum: ["segment", "word"] },
              },
              stream: { type: "boolean", description: "json and text formats only" },
              store: { type: "boolean", description: "keep in history as a session of kind `file`" },
            },
          },
        },
      },
      responses: {
        "200": {
          description: "the transcript in the requested format, or an SSE stream",
          headers: {
            "x-parley-words": { description: "present when word times were asked for and are unavailable" },
            "x-parley-session-id": {
              description: "with store=true: the history session holding the transcript",
            },
          },
          content: {
            "application/json": {
              type: "object",
              properties: {
                text: { type: "string" },
                segments: { type: "array", items: { type: "object" } },
                duration: { type: "number" },
              },
            },
            "text/plain": { type: "string" },
            "text/vtt": { type: "string" },
            "application/x-subrip": { type: "string" },
            "text/event-stream": { type: "string" },
          },
        },
      },
      errors: [400, 413, 415, 502, 503],
    },
    {
      method: "post",
      path: "/v1/audio/speech",
      tag: "openai",
      summary: "Synthesize speech (OpenAI-compatible), streamed as it is made",
      description: [
        "Runs as an `interactive` TTS job on the fair scheduler and streams from the first chunk. `model`: " +
        `${OPENAI_SPEECH_MODELS.join(", ")} or an engine name. \`voice\`: any voice of GET /v1/voices ` +
        `(\`engine:voice\` or a bare voice of the configured engine) or an OpenAI name (${
          Object.keys(OPENAI_VOICES).join(", ")
        }). \`input\` ≤ ${SPEECH_MAX_INPUT} characters. \`speed\` ${SPEECH_MIN_SPEED}–${SPEECH_MAX_SPEED} ` +
        "(time-stretched, pitch kept; OpenAI's 0.25–4.0 outside that is a 400). Audio is 24 kHz mono; `pcm` is " +
        "raw 16-bit LE. `stream_format: sse` sends base64 `speech.audio.delta` events and `speech.audio.done`. " +
        ERRORS,
        "",
        "```sh",
        'curl -H "Authorization: Bearer $KEY" -H "Content-Type: application/json" \\',
        '  -d \'{"model":"tts-1","voice":"alloy","input":"Hello there."}\' $PARLEY/v1/audio/speech -o hello.mp3',
        "```",
        "```js",
        'const speech = await client.audio.speech.create({ model: "tts-1", voice: "alloy", input: "Hello there." });',
        'await fs.promises.writeFile("hello.mp3", Buffer.from(await speech.arrayBuffer()));',
        "```",
      ].join("\n"),
      scope: "tts",
      body: {
        required: true,
        content: {
          "application/json": {
            type: "object",
            required: ["model", "input", "voice"],
            properties: {
              model: { type: "string", examples: ["tts-1"] },
              input: { type: "string", maxLength: SPEECH_MAX_INPUT },
              voice: { type: "string", examples: ["alloy", "espeak:en-gb-x-rp"] },
              response_format: { type: "string", enum: [...SPEECH_FORMATS], default: "mp3" },
              speed: { type: "number", minimum: SPEECH_MIN_SPEED, maximum: SPEECH_MAX_SPEED, default: 1 },
              stream_format: { type: "string", enum: ["audio", "sse"], default: "audio" },
              instructions: { type: "string", description: "accepted, ignored" },
            },
          },
        },
      },
      responses: {
        "200": {
          description: "audio (chunked), or SSE",
          headers: { "x-parley-job-id": { description: "the TTS job behind this response" } },
          content: {
            "audio/mpeg": { type: "string" },
            "audio/wav": { type: "string" },
            "audio/ogg": { type: "string" },
            "audio/flac": { type: "string" },
            "audio/pcm": { type: "string" },
            "text/event-stream": { type: "string" },
          },
        },
      },
      errors: [400, 413, 415],
    },
    {
      method: "get",
      path: "/v1/models",
      tag: "openai",
      summary: "Model ids (OpenAI list shape)",
      description: [
        "OpenAI ids mapped to the configured engines, and the engine names. Any valid credential.",
        "```sh",
        'curl -H "Authorization: Bearer $KEY" $PARLEY/v1/models',
        "```",
        "```js",
        "for await (const m of client.models.list()) console.log(m.id);",
        "```",
      ].join("\n"),
      scope: "any",
      responses: {
        "200": {
          description: "the list",
          content: {
            "application/json": {
              type: "object",
              properties: {
                object: { const: "list" },
                data: {
                  type: "array",
                  items: {
                    type: "object",
                    properties: {
                      id: { type: "string" },
                      object: { const: "model" },
                      created: { type: "integer" },
                      owned_by: { type: "string" },
                    },
                  },
                },
              },
            },
          },
        },
        "4XX": { description: "error", content: { "application/json": OpenAiErrorSchema } },
      },
    },
    {
      method: "get",
      path: "/v1/models/{id}",
      tag: "openai",
      summary: "One model id",
      description: '```js\nawait client.models.retrieve("whisper-1");\n```',
      scope: "any",
      pathParams: { id: { schema: { type: "string" }, description: "model id" } },
      responses: { "200": { description: "the model", content: { "application/json": { type: "object" } } } },
      errors: [404],
    },
  ];
}
