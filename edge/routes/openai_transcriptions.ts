/**
 * POST /v1/audio/transcriptions, OpenAI's multipart shape (scope `sessions`). The edge reads and checks the
 * form, decodes the file (lib/audio/decode.ts: WAV/MP3/FLAC/Ogg Opus/Vorbis, sniffed from the bytes),
 * resamples it to 16 kHz and hands it to the least-loaded origin, which runs it through the live pipeline's VAD,
 * segmenter and recognizer behind live work (origin/transcribe). Segments stream back as NDJSON and leave as
 * the requested `response_format`, or as SSE `transcript.text.delta` / `transcript.text.done` with `stream`.
 *
 * Fields: `file` (≤ 25 MB, ≤ TRANSCRIBE_MAX_SECONDS), `model` (an OpenAI id or the engine name; see
 * protocol/openai.ts), `language`, `prompt` (accepted and ignored: neither bundled engine takes a prompt),
 * `response_format`, `temperature` (0–1, accepted and ignored: decoding is deterministic),
 * `timestamp_granularities[]` (`segment`; with `word`, `words` from the engine's word alignment — when a
 * segment has none, the answer has no `words` and the header `x-parley-words: unavailable: …` says why),
 * `stream`, `store` (`true`: kept in history as a session of kind `file`, its id in `x-parley-session-id`;
 * edge/transcription_store.ts).
 */
import { pickNodes } from "../../db/nodes.ts";
import { decodeAudio, DEFAULT_MAX_AUDIO_BYTES } from "../../lib/audio/decode.ts";
import { AudioTooLargeError } from "../../lib/audio/errors.ts";
import { floatToInt16, resampleAll } from "../../lib/audio/resampler.ts";
import { ApiError } from "../../lib/errors.ts";
import { readBodyLimited } from "../../lib/http.ts";
import { registry } from "../../lib/metrics.ts";
import {
  INTERNAL_TRANSCRIPTIONS_PATH,
  TRANSCRIBE_RATE,
  type TranscribeLine,
  transcribeModel,
  TRANSCRIPTION_FORMATS,
  type TranscriptionFormat,
  type TranscriptionSegment,
  transcriptionWords,
} from "../../protocol/openai.ts";
import type { EdgeApp, EdgeContext } from "../context.ts";
import { guard } from "../context.ts";
import { ParamError } from "../openai_errors.ts";
import { OriginUnreachableError } from "../origin_client.ts";
import { SSE_HEADERS, streamOf } from "../sse.ts";
import type { SegmentRow } from "../../db/history.ts";
import { toSrt, toWebVtt } from "./history.ts";
import { StoredTranscription } from "../transcription_store.ts";

const mRequests = registry.counter(
  "parley_openai_transcriptions_total",
  "POST /v1/audio/transcriptions by response format and outcome",
);
const mStreams = registry.gauge("parley_openai_transcription_streams_open", "Open transcription SSE streams");
const mDecode = registry.histogram(
  "parley_openai_upload_decode_seconds",
  "Edge time to decode and resample an uploaded file",
);

/** Multipart framing allowance on top of the file limit. */
const FORM_OVERHEAD = 1024 * 1024;
const LANGUAGE = /^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$/;
const enc = new TextEncoder();

interface Form {
  file: File;
  model: string;
  language?: string;
  format: TranscriptionFormat;
  words: boolean;
  stream: boolean;
  /** Keep the transcription in history as a session of kind `file` (edge/transcription_store.ts). */
  store: boolean;
}

function text(form: FormData, name: string, max = 256): string | undefined {
  const v = form.get(name);
  if (v === null) return undefined;
  if (typeof v !== "string") throw new ParamError(name, "must be a text field, not a file");
  if (v.includes("\uFFFD")) throw new ParamError(name, "is not valid UTF-8");
  if (v.length > max) throw new ParamError(name, `longer than ${max} characters`);
  return v;
}

function parseForm(form: FormData): Form {
  const file = form.get("file");
  if (file === null) throw new ParamError("file", "required (the audio file, as a multipart file field)");
  if (typeof file === "string") throw new ParamError("file", "must be a file upload, not a text field");
  const model = text(form, "model");
  if (!model) throw new ParamError("model", "required (see GET /v1/models)");
  const language = text(form, "language", 16);
  if (language !== undefined && !LANGUAGE.test(language)) {
    throw new ParamError("language", 'an ISO-639-1 code such as "en"');
  }
  text(form, "prompt", 8192); // accepted (checked), not used
  const rf = text(form, "response_format") ?? "json";
  if (!(TRANSCRIPTION_FORMATS as readonly string[]).includes(rf)) {
    throw new ParamError("response_format", `one of ${TRANSCRIPTION_FORMATS.join(", ")}`);
  }
  const temperature = text(form, "temperature", 32);
  if (temperature !== undefined) {
    const t = Number(temperature);
    if (temperature.trim() === "" || !Number.isFinite(t) || t < 0 || t > 1) {
      throw new ParamError("temperature", "a number from 0 to 1");
    }
  }
  const grans = [...form.getAll("timestamp_granularities[]"), ...form.getAll("timestamp_granularities")];
  let words = false;
  for (const g of grans) {
    if (g !== "word" && g !== "segment") throw new ParamError("timestamp_granularities[]", "word or segment");
    if (g === "word") words = true;
  }
  if (grans.length && rf !== "verbose_json") {
    throw new ParamError("timestamp_granularities[]", "needs response_format verbose_json");
  }
  const stream = text(form, "stream", 8);
  if (stream !== undefined && stream !== "true" && stream !== "false") {
    throw new ParamError("stream", "true or false");
  }
  if (stream === "true" && rf !== "json" && rf !== "text") {
    throw new ParamError("stream", "streaming answers json or text response formats only");
  }
  const store = text(form, "store", 8);
  if (store !== undefined && store !== "true" && store !== "false") {
    throw new ParamError("store", "true or false");
  }
  return {
    file,
    model,
    language,
    format: rf as TranscriptionFormat,
    words,
    stream: stream === "true",
    store: store === "true",
  };
}

function segmentRows(segs: Extract<TranscribeLine, { type: "segment" }>[]): SegmentRow[] {
  return segs.map((s, i) => ({
    seq: i + 1,
    segment_id: s.id,
    status: "confirmed",
    text: s.text,
    alternatives: [],
    start_ms: s.start_ms,
    end_ms: s.end_ms,
    latency_ms: null,
    created_at: "",
    words: s.words?.map((w) => ({ ...w, confidence: null })) ?? null,
    confidence: null,
  }));
}

export function openAiTranscriptionRoutes(app: EdgeApp, ctx: EdgeContext): void {
  const auth = guard(ctx, "sessions");
  const maxSeconds = ctx.config.TRANSCRIBE_MAX_SECONDS;

  /** The least-loaded origin that answers; the next one only if the first never took the work. */
  async function callOrigin(pcm: Uint8Array, language: string | undefined, requestId: string) {
    const nodes = await pickNodes(ctx.database, ctx.config.NODE_TIMEOUT_MS);
    if (!nodes.length) {
      throw new ApiError(503, "no_origin_available", "no origin node can transcribe now", {
        "retry-after": "2",
      });
    }
    const path = INTERNAL_TRANSCRIPTIONS_PATH + (language ? `?language=${encodeURIComponent(language)}` : "");
    for (const n of nodes.slice(0, 3)) {
      try {
        const res = await ctx.origins.open(n.url, "POST", path, {
          body: pcm,
          contentType: "application/octet-stream",
          requestId,
        });
        if (res.status === 503) {
          await res.body?.cancel();
          continue;
        }
        if (!res.ok || !res.body) {
          const detail = await res.text().catch(() => "");
          ctx.log.error("origin refused a transcription", {
            status: res.status,
            detail: detail.slice(0, 200),
          });
          throw new ApiError(502, "origin_error", "the origin failed to transcribe the file");
        }
        return { body: res.body, nodeId: n.id };
      } catch (e) {
        if (e instanceof OriginUnreachableError) continue;
        throw e;
      }
    }
    throw new ApiError(503, "no_origin_available", "no origin node can transcribe now", {
      "retry-after": "2",
    });
  }

  async function* lines(body: ReadableStream<Uint8Array>): AsyncGenerator<TranscribeLine> {
    const reader = body.getReader();
    const dec = new TextDecoder();
    let buf = "";
    try {
      while (true) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += dec.decode(value, { stream: true });
        let nl;
        while ((nl = buf.indexOf("\n")) >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          if (line) yield JSON.parse(line) as TranscribeLine;
        }
      }
    } finally {
      await reader.cancel().catch(() => {});
    }
  }

  app.post("/v1/audio/transcriptions", auth, async (c) => {
    const ct = c.req.header("content-type") ?? "";
    if (!/^multipart\/form-data\s*;/i.test(ct)) {
      throw new ApiError(
        415,
        "unsupported_media_type",
        "send multipart/form-data (OpenAI's transcription form)",
      );
    }
    let raw: Uint8Array;
    try {
      raw = await readBodyLimited(c, DEFAULT_MAX_AUDIO_BYTES + FORM_OVERHEAD);
    } catch (e) {
      if (e instanceof ApiError && e.status === 413) {
        throw new ParamError(
          "file",
          `larger than ${DEFAULT_MAX_AUDIO_BYTES} bytes (25 MB)`,
          413,
          "payload_too_large",
        );
      }
      throw e;
    }
    let form: FormData;
    try {
      form = await new Response(raw as Uint8Array<ArrayBuffer>, { headers: { "content-type": ct } })
        .formData();
    } catch (e) {
      throw new ApiError(
        400,
        "bad_request",
        `malformed multipart body: ${e instanceof Error ? e.message : e}`,
      );
    }
    const f = parseForm(form);
    // With ASR_ENGINE=auto the origin decides which recognizer runs; the edge accepts any known model id then.
    const configured = ctx.config.ASR_ENGINE;
    const engine = transcribeModel(f.model, configured === "auto" ? "ctc" : configured);
    if (!engine || (configured !== "auto" && engine !== configured)) {
      throw new ParamError(
        "model",
        `unknown model "${f.model}"; this service transcribes with ${ctx.config.ASR_ENGINE} (also reachable as whisper-1, gpt-4o-transcribe, gpt-4o-mini-transcribe)`,
      );
    }
    const t0 = performance.now();
    const bytes = new Uint8Array(await f.file.arrayBuffer());
    let decoded;
    try {
      decoded = await decodeAudio(bytes, { filename: f.file.name, contentType: f.file.type }, {
        maxBytes: DEFAULT_MAX_AUDIO_BYTES,
        maxDurationMs: maxSeconds * 1000,
      });
    } catch (e) {
      if (e instanceof AudioTooLargeError && /limit$/.test(e.message) && /longer/.test(e.message)) {
        throw new ParamError(
          "file",
          `${e.message}: files longer than ${maxSeconds} s cannot be transcribed synchronously, and asynchronous transcription jobs are not offered; split the file, or stream it live (WebRTC session)`,
          413,
          "payload_too_large",
        );
      }
      if (e instanceof ApiError) throw new ParamError("file", e.message, e.status, e.code);
      throw e;
    }
    if (decoded.pcm.length === 0) throw new ParamError("file", "the audio has no samples");
    const pcm16 = floatToInt16(resampleAll(decoded.pcm, decoded.sampleRate, TRANSCRIBE_RATE));
    const body = new Uint8Array(pcm16.buffer, pcm16.byteOffset, pcm16.byteLength);
    mDecode.observe((performance.now() - t0) / 1000);
    const called = await callOrigin(body, f.language, c.get("requestId"));
    const origin = called.body;
    const language = f.language ?? "en";
    let store: StoredTranscription | null = null;
    if (f.store) {
      const p = c.get("principal");
      try {
        store = await StoredTranscription.open(ctx.database, {
          tenantId: p.tenantId,
          apiKeyId: p.keyId,
          nodeId: called.nodeId,
          language,
        });
      } catch (e) {
        await origin.cancel().catch(() => {});
        throw e;
      }
      c.header("x-parley-session-id", store.sessionId);
    }

    if (f.stream) {
      const abort = new AbortController();
      const produce = async function* (): AsyncGenerator<Uint8Array> {
        const all: string[] = [];
        try {
          yield* relay();
        } finally {
          await store?.end(false, "the transcription stream ended early").catch(() => {});
        }
        async function* relay(): AsyncGenerator<Uint8Array> {
          for await (const l of lines(origin)) {
            if (l.type === "segment") {
              await store?.add(l);
              const delta = (all.length ? " " : "") + l.text;
              all.push(l.text);
              yield enc.encode(`data: ${JSON.stringify({ type: "transcript.text.delta", delta })}\n\n`);
            } else if (l.type === "error") {
              yield enc.encode(
                `event: error\ndata: ${
                  JSON.stringify({ error: { message: l.message, type: "server_error", code: l.code } })
                }\n\n`,
              );
              mRequests.inc({ format: "stream", outcome: "error" });
              await store?.end(false, l.message);
              return;
            } else {
              await store?.end(true);
              yield enc.encode(
                `data: ${JSON.stringify({ type: "transcript.text.done", text: all.join(" ") })}\n\n`,
              );
              mRequests.inc({ format: "stream", outcome: "ok" });
            }
          }
        }
      };
      return c.body(
        streamOf(produce(), abort, mStreams),
        200,
        store ? { ...SSE_HEADERS, "x-parley-session-id": store.sessionId } : SSE_HEADERS,
      );
    }

    const segs: Extract<TranscribeLine, { type: "segment" }>[] = [];
    let done: Extract<TranscribeLine, { type: "done" }> | null = null;
    try {
      for await (const l of lines(origin)) {
        if (l.type === "segment") {
          segs.push(l);
          await store?.add(l);
        } else if (l.type === "done") done = l;
        else {
          mRequests.inc({ format: f.format, outcome: "error" });
          throw new ApiError(502, "origin_error", l.message);
        }
      }
      if (!done) throw new ApiError(502, "origin_error", "the origin ended the transcription early");
      await store?.end(true);
    } finally {
      await store?.end(false, "the transcription failed").catch(() => {});
    }
    mRequests.inc({ format: f.format, outcome: "ok" });
    const all = segs.map((s) => s.text).join(" ");
    switch (f.format) {
      case "json":
        return c.json({
          text: all,
          usage: { type: "duration", seconds: Math.ceil(done.duration_ms / 1000) },
        });
      case "text":
        return c.text(all + "\n");
      case "srt":
        return c.body(toSrt(segmentRows(segs)), 200, {
          "content-type": "application/x-subrip; charset=utf-8",
        });
      case "vtt":
        return c.body(toWebVtt(segmentRows(segs)), 200, { "content-type": "text/vtt; charset=utf-8" });
      case "verbose_json": {
        const segments: TranscriptionSegment[] = segs.map((s, i) => ({
          id: i,
          seek: 0,
          start: s.start_ms / 1000,
          end: s.end_ms / 1000,
          text: s.text,
          tokens: [],
          temperature: 0,
          avg_logprob: s.score,
          compression_ratio: 1,
          no_speech_prob: 0,
        }));
        // Word times only when the engine aligned every segment's words: never invented.
        const words = f.words ? transcriptionWords(segs) : null;
        if (f.words && !words) {
          // with auto the edge does not know which recognizer the origin chose
          const who = ctx.config.ASR_ENGINE === "auto" ? "the recognizer" : engine;
          c.header("x-parley-words", `unavailable: ${who} did not align the words of every segment`);
        }
        return c.json({
          task: "transcribe",
          language,
          duration: done.duration_ms / 1000,
          text: all,
          ...(words ? { words } : {}),
          segments,
          usage: { type: "duration", seconds: Math.ceil(done.duration_ms / 1000) },
        });
      }
    }
  });
}
