/**
 * POST /v1/audio/speech, OpenAI's JSON shape (scope `tts`). The text becomes an `interactive` TTS job on the
 * fair, multi-origin job scheduler (db/tts_jobs.ts), so speech requests and long jobs share the synthesis
 * slots fairly; its audio is read as chunks finish (edge/tts_audio.ts, as GET /v1/tts/jobs/{id}/audio does)
 * and transcoded on the way out: optional time-stretch (`speed`, lib/audio/time_stretch.ts), resampling to
 * 24 kHz (OpenAI's rate; Opus needs one of 8/12/16/24/48 kHz) and the streaming encoder of the format
 * (lib/audio/encode.ts). `stream_format: "sse"` sends the same bytes as base64 `speech.audio.delta` events,
 * then `speech.audio.done`. A client that hangs up cancels the job.
 */
import { Buffer } from "node:buffer";
import { endJob, getJob, IdempotencyConflictError, type NewJob, submitJobs } from "../../db/tts_jobs.ts";
import { createEncoder, type EncodeFormat } from "../../lib/audio/encode.ts";
import { floatToInt16, StreamingResampler } from "../../lib/audio/resampler.ts";
import { TimeStretcher } from "../../lib/audio/time_stretch.ts";
import { ApiError } from "../../lib/errors.ts";
import { readJson } from "../../lib/http.ts";
import { registry } from "../../lib/metrics.ts";
import { TTS_ENGINES, type TtsEngineName } from "../../protocol/engines.ts";
import {
  SPEECH_FORMATS,
  SPEECH_MAX_INPUT,
  SPEECH_MAX_SPEED,
  SPEECH_MIN_SPEED,
  SPEECH_PCM_RATE,
  SPEECH_STREAM_FORMATS,
  type SpeechFormat,
  speechModel,
} from "../../protocol/openai.ts";
import { TTS_SAMPLE_RATE } from "../../protocol/tts.ts";
import { openAiVoice, resolveVoice, unknownVoiceMessage } from "../../protocol/voices.ts";
import { chunkText, cleanText, countChars } from "../../protocol/tts_text.ts";
import type { EdgeApp, EdgeContext } from "../context.ts";
import { guard } from "../context.ts";
import { ParamError } from "../openai_errors.ts";
import { SSE_HEADERS, streamOf } from "../sse.ts";
import { jobPcm } from "../tts_audio.ts";

const mRequests = registry.counter(
  "parley_openai_speech_total",
  "POST /v1/audio/speech by format and outcome",
);
const mStreams = registry.gauge("parley_openai_speech_streams_open", "Open /v1/audio/speech responses");
const mFirstByte = registry.histogram(
  "parley_openai_speech_first_audio_seconds",
  "POST /v1/audio/speech: request to first encoded audio bytes",
  [0.025, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 1, 2, 5],
);

const CONTENT_TYPE: Record<SpeechFormat, string> = {
  wav: "audio/wav",
  pcm: `audio/pcm;rate=${SPEECH_PCM_RATE};channels=1;encoding=s16le`,
  mp3: "audio/mpeg",
  opus: "audio/ogg; codecs=opus",
  flac: "audio/flac",
};

export interface SpeechRequest {
  engine: TtsEngineName;
  voice: string;
  input: string;
  format: SpeechFormat;
  speed: number;
  sse: boolean;
}

/** Checks an OpenAI speech body; every refusal names its field. */
export function parseSpeech(
  body: unknown,
  configured: TtsEngineName,
  defaultVoice: string | undefined,
): SpeechRequest {
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw new ApiError(400, "invalid_json", "body must be a JSON object");
  }
  const b = body as Record<string, unknown>;
  const str = (k: string, required: boolean): string | undefined => {
    const v = b[k];
    if (v === undefined || v === null) {
      if (required) throw new ParamError(k, "required");
      return undefined;
    }
    if (typeof v !== "string") throw new ParamError(k, "must be a string");
    return v;
  };
  const model = str("model", true)!;
  let engine = speechModel(model, configured);
  if (!engine) {
    throw new ParamError("model", `unknown model "${model.slice(0, 64)}"; see GET /v1/models`);
  }
  const input = str("input", true)!;
  const n = countChars(input);
  if (n > SPEECH_MAX_INPUT) {
    throw new ParamError(
      "input",
      `${n} characters; the limit is ${SPEECH_MAX_INPUT}`,
      413,
      "payload_too_large",
    );
  }
  if (!chunkText(input).length) throw new ParamError("input", "empty (nothing to speak)");
  const v = str("voice", true)!;
  if (!v.trim()) throw new ParamError("voice", "required (see GET /v1/voices)");
  if (v.length > 100) throw new ParamError("voice", "longer than 100 characters");
  const defaults = { engine: configured, voice: defaultVoice };
  // an OpenAI name (alloy …) selects the model's engine's voice for it; anything else is a Parley voice name
  const named = openAiVoice(v, engine, defaults) ?? resolveVoice(v, { engine, voice: defaultVoice });
  if (!named) throw new ParamError("voice", unknownVoiceMessage(v));
  if (named.engine !== engine) {
    if ((TTS_ENGINES as readonly string[]).includes(model)) {
      throw new ParamError("voice", `voice of engine ${named.engine} with model ${model}`);
    }
    engine = named.engine;
  }
  const voice = named.voice;
  const format = str("response_format", false) ?? "mp3";
  if (!(SPEECH_FORMATS as readonly string[]).includes(format)) {
    throw new ParamError("response_format", `one of ${SPEECH_FORMATS.join(", ")} (no AAC encoder here)`);
  }
  const sp = b.speed ?? 1;
  if (typeof sp !== "number" || !Number.isFinite(sp)) throw new ParamError("speed", "must be a number");
  if (sp < 0.25 || sp > 4) throw new ParamError("speed", "from 0.25 to 4.0");
  if (sp < SPEECH_MIN_SPEED || sp > SPEECH_MAX_SPEED) {
    throw new ParamError("speed", `Parley renders ${SPEECH_MIN_SPEED} to ${SPEECH_MAX_SPEED}`);
  }
  const sf = str("stream_format", false) ?? "audio";
  if (!(SPEECH_STREAM_FORMATS as readonly string[]).includes(sf)) {
    throw new ParamError("stream_format", `one of ${SPEECH_STREAM_FORMATS.join(", ")}`);
  }
  if (b.instructions !== undefined && typeof b.instructions !== "string") {
    throw new ParamError("instructions", "must be a string");
  }
  return { engine, voice, input, format: format as SpeechFormat, speed: sp, sse: sf === "sse" };
}

/** PCM16 of the job (22050 Hz) → stretched → 24 kHz → encoded bytes; everything freed in `finally`. */
/** Samples (at TTS_SAMPLE_RATE) encoded per step of a streamed response: 200 ms. */
const ENCODE_SLICE = Math.round(TTS_SAMPLE_RATE / 5);

async function* transcode(
  pcm: AsyncGenerator<Uint8Array, boolean>,
  format: SpeechFormat,
  speed: number,
): AsyncGenerator<Uint8Array, boolean> {
  const stretcher = speed === 1 ? null : await TimeStretcher.create(TTS_SAMPLE_RATE, speed);
  const resampler = new StreamingResampler(TTS_SAMPLE_RATE, SPEECH_PCM_RATE);
  const encoder = await createEncoder(format as EncodeFormat, SPEECH_PCM_RATE);
  let odd: Uint8Array | null = null;
  try {
    const step = (x: Int16Array) => encoder.write(floatToInt16(resampler.process(x)));
    let complete = false;
    while (true) {
      const r = await pcm.next();
      if (r.done) {
        complete = r.value;
        break;
      }
      let bytes = r.value;
      if (odd) {
        const joined = new Uint8Array(odd.length + bytes.length);
        joined.set(odd);
        joined.set(bytes, odd.length);
        bytes = joined;
        odd = null;
      }
      if (bytes.length % 2) {
        odd = bytes.slice(-1);
        bytes = bytes.subarray(0, bytes.length - 1);
      }
      const samples = new Int16Array(bytes.slice().buffer);
      // A chunk is seconds of audio: encode it in short slices and hand each on, so that the first bytes leave
      // after one slice's encode (MP3 in pure JS is far slower than real time per call on a whole chunk).
      // Each slice's bytes are followed by a turn of the event loop: the HTTP server writes to the socket on this
      // thread, so without it the bytes of a whole chunk would leave together after its last slice.
      for (let at = 0; at < samples.length; at += ENCODE_SLICE) {
        const slice = samples.subarray(at, at + ENCODE_SLICE);
        const out = step(stretcher ? stretcher.write(slice) : slice);
        if (out.length) {
          yield out;
          await new Promise<void>((r) => setTimeout(r, 0));
        }
      }
    }
    const tail = stretcher ? stretcher.end() : new Int16Array(0);
    const last = encoder.write(floatToInt16(resampler.process(tail)));
    if (last.length) yield last;
    const flushed = encoder.write(floatToInt16(resampler.flush()));
    if (flushed.length) yield flushed;
    const end = encoder.end();
    if (end.length) yield end;
    return complete;
  } finally {
    stretcher?.close();
    encoder.close();
  }
}

export function openAiSpeechRoutes(app: EdgeApp, ctx: EdgeContext): void {
  const auth = guard(ctx, "tts");
  const database = ctx.database;

  app.post("/v1/audio/speech", auth, async (c) => {
    const t0 = performance.now();
    const p = c.get("principal");
    const req = parseSpeech(
      await readJson(c, Math.max(ctx.config.MAX_BODY_BYTES, SPEECH_MAX_INPUT * 12 + 64 * 1024)),
      ctx.config.TTS_ENGINE,
      ctx.config.TTS_VOICE,
    );
    const job: NewJob = {
      tenantId: p.tenantId,
      apiKeyId: p.keyId,
      text: cleanText(req.input),
      voice: req.voice,
      engine: req.engine,
      format: "wav",
      priority: "interactive",
      sampleRate: TTS_SAMPLE_RATE,
      chunks: chunkText(req.input),
    };
    let row;
    try {
      [{ job: row }] = await submitJobs(database, [job]);
    } catch (e) {
      if (e instanceof IdempotencyConflictError) throw new ApiError(409, "conflict", e.message);
      throw e;
    }
    const jobRow = row;
    const abort = new AbortController();
    const label = { format: req.format, stream: req.sse ? "sse" : "audio" };
    async function* produce(): AsyncGenerator<Uint8Array> {
      let first = true;
      let ok = false;
      let audio: AsyncGenerator<Uint8Array, boolean> | null = null;
      try {
        audio = transcode(jobPcm(database, jobRow, p.tenantId, abort.signal), req.format, req.speed);
        let complete = false;
        while (true) {
          const r = await audio.next();
          if (r.done) {
            complete = r.value;
            break;
          }
          const bytes = r.value;
          if (first) {
            first = false;
            mFirstByte.observe((performance.now() - t0) / 1000);
          }
          yield req.sse
            ? new TextEncoder().encode(
              `data: ${
                JSON.stringify({ type: "speech.audio.delta", audio: Buffer.from(bytes).toString("base64") })
              }\n\n`,
            )
            : bytes;
        }
        if (!complete) {
          const end = await getJob(database, p.tenantId, jobRow.id);
          mRequests.inc({ ...label, outcome: "failed" });
          const message = `synthesis ${end?.status ?? "lost"}${end?.error ? `: ${end.error}` : ""}`;
          if (req.sse) {
            yield new TextEncoder().encode(
              `event: error\ndata: ${
                JSON.stringify({ error: { message, type: "server_error", code: "internal" } })
              }\n\n`,
            );
            return;
          }
          throw new Error(message); // the client sees a truncated (errored) body, not a clean end
        }
        ok = true;
        mRequests.inc({ ...label, outcome: "ok" });
        if (req.sse) {
          const tokens = countChars(req.input);
          yield new TextEncoder().encode(
            `data: ${
              JSON.stringify({
                type: "speech.audio.done",
                usage: { input_tokens: tokens, output_tokens: 0, total_tokens: tokens },
              })
            }\n\n`,
          );
        }
      } finally {
        await audio?.return(false).catch(() => {}); // frees the encoder and stretcher
        if (!ok) {
          // the client left (or synthesis failed): nothing more of this job should be made
          await endJob(database, jobRow.id, "canceled", null, p.tenantId).catch(() => {});
        }
      }
    }
    const headers: Record<string, string> = req.sse
      ? { ...SSE_HEADERS }
      : { "content-type": CONTENT_TYPE[req.format], "cache-control": "no-store" };
    headers["x-parley-job-id"] = jobRow.id;
    return c.body(streamOf(produce(), abort, mStreams), 200, headers);
  });
}
