/**
 * TTS job API wire types (edge ⇄ clients, including the web client). JSON field names are snake_case.
 *
 *   POST   /v1/tts/jobs             CreateTtsJobRequest            → 202 TtsJobCreated
 *   POST   /v1/tts/batches          CreateTtsBatchRequest          → 202 TtsBatchCreated
 *   GET    /v1/tts/jobs/{id}        → TtsJob
 *   GET    /v1/tts/jobs/{id}/audio  → audio/wav (or raw PCM16 LE); streams while the job runs
 *   GET    /v1/tts/jobs/{id}/events → text/event-stream of TtsEvent
 *   DELETE /v1/tts/jobs/{id}        → TtsJob (status canceled, or the terminal status it already had)
 *   GET    /v1/tts/jobs?status=&limit=&cursor= → TtsJobList (newest first, keyset pagination)
 */
import { TTS_ENGINES, type TtsEngineName } from "./engines.ts";

export const TTS_JOB_STATUSES = ["queued", "running", "succeeded", "failed", "canceled"] as const;
export type TtsJobStatus = typeof TTS_JOB_STATUSES[number];
export const TTS_PRIORITIES = ["interactive", "batch"] as const;
export type TtsPriority = typeof TTS_PRIORITIES[number];
export const TTS_FORMATS = ["wav", "pcm16"] as const;
export type TtsFormat = typeof TTS_FORMATS[number];
export const TTS_JOB_ENGINES = TTS_ENGINES;
export type TtsJobEngine = TtsEngineName;

/** Most texts a batch may carry. */
export const TTS_MAX_BATCH = 100;
/** Sample rate of every job's audio (engines' output is resampled to it). */
export const TTS_SAMPLE_RATE = 22050;

export interface CreateTtsJobRequest {
  /** Plain text, or SSML with `ssml: true`. */
  text: string;
  /** A voice name of protocol/voices.ts (`flite:rms`, `espeak:de`, `rms`); see GET /v1/voices. */
  voice?: string;
  /** Speaking rate, 0.5–2.0 (default 1). */
  speed?: number;
  /** `text` is SSML (the subset of protocol/ssml.ts); malformed markup is a 400 `invalid_ssml`. */
  ssml?: boolean;
  engine?: TtsJobEngine;
  format?: TtsFormat;
  priority?: TtsPriority;
}

export interface CreateTtsBatchRequest {
  texts: string[];
  voice?: string;
  speed?: number;
  ssml?: boolean;
  engine?: TtsJobEngine;
  format?: TtsFormat;
  /** Default for batches: "batch". */
  priority?: TtsPriority;
}

export interface TtsJobLinks {
  self: string;
  audio: string;
  events: string;
}

export interface TtsJobCreated {
  id: string;
  status: TtsJobStatus;
  chunks_total: number;
  links: TtsJobLinks;
  /** false when an Idempotency-Key matched an earlier submit (the same job is returned). */
  created: boolean;
}

export interface TtsBatchCreated {
  batch_id: string;
  jobs: TtsJobCreated[];
}

export interface TtsJobProgress {
  chunks_done: number;
  chunks_total: number;
  chars_done: number;
  chars_total: number;
  audio_seconds: number;
}

export interface TtsJobTimings {
  queued_at: string;
  started_at: string | null;
  first_audio_at: string | null;
  finished_at: string | null;
}

export interface TtsJob {
  id: string;
  batch_id: string | null;
  status: TtsJobStatus;
  voice: string;
  engine: TtsJobEngine;
  speed: number;
  ssml: boolean;
  format: TtsFormat;
  priority: TtsPriority;
  sample_rate: number;
  progress: TtsJobProgress;
  timings: TtsJobTimings;
  error: string | null;
  links: TtsJobLinks;
}

export interface TtsJobList {
  jobs: TtsJob[];
  /** Pass as `cursor` for the next page; null on the last page. */
  next_cursor: string | null;
}

/**
 * Server-Sent Events on /events. Event names: `status` (first event: the whole job), `chunk` (one chunk's audio
 * is ready), `progress`, then exactly one of `succeeded`, `failed`, `canceled` (payload: the whole job) and the
 * stream ends.
 */
export type TtsEvent =
  | { event: "status"; data: TtsJob }
  | { event: "chunk"; data: { idx: number; audio_ms: number } }
  | { event: "progress"; data: TtsJobProgress & { status: TtsJobStatus } }
  | { event: "succeeded" | "failed" | "canceled"; data: TtsJob };

export function ttsJobLinks(id: string): TtsJobLinks {
  const self = `/v1/tts/jobs/${id}`;
  return { self, audio: `${self}/audio`, events: `${self}/events` };
}

/**
 * Voices the espeak engine accepts (eSpeak NG 1.51 language ids, from `list_voices`, without the three it lists
 * but refuses in `set_voice`: en-gb, fr-fr, chr-US-Qaaa-x-west). The edge validates against
 * this list so an unknown voice is a 400 at submit, not a failed job later. `vits` has one voice per model and
 * accepts only "default".
 */
// deno-fmt-ignore
export const ESPEAK_VOICES: readonly string[] = [
  "af", "am", "an", "ar", "as", "az", "ba", "be", "bg", "bn", "bpy", "bs", "ca", "ca-ba", "ca-nw", "ca-va",
  "cmn", "cmn-latn-pinyin", "cs", "cv", "cy", "da", "de", "el", "en-029",
  "en-gb-scotland", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-gb-x-rp", "en-us", "en-us-nyc", "eo", "es", "es-419",
  "et", "eu", "fa", "fa-latn", "fi", "fo", "fr-be", "fr-ch", "ga", "gd", "gn", "grc", "gu", "hak", "haw",
  "he", "hi", "hr", "ht", "hu", "hy", "hyw", "ia", "id", "io", "is", "it", "ja", "jbo", "ka", "kaa", "kk", "kl",
  "kn", "ko", "kok", "ku", "ky", "la", "lb", "lfn", "lt", "ltg", "lv", "mi", "mk", "ml", "mr", "ms", "mt", "mto",
  "my", "nb", "nci", "ne", "nl", "nog", "om", "or", "pa", "pap", "piqd", "pl", "pt", "pt-br", "py", "qdb", "qu",
  "quc", "qya", "ro", "ru", "ru-cl", "ru-lv", "sd", "shn", "si", "sjn", "sk", "sl", "smj", "sq", "sr", "sv", "sw",
  "ta", "te", "th", "ti", "tk", "tn", "tr", "tt", "ug", "uk", "ur", "uz", "vi", "vi-vn-x-central",
  "vi-vn-x-south", "xex", "yue",
];
