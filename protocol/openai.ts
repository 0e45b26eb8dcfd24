/**
 * The OpenAI-compatible audio API (edge ⇄ clients) and the internal transcription call it makes (edge → origin).
 *
 *   POST /v1/audio/transcriptions   multipart/form-data (file, model, language, prompt, response_format,
 *                                   temperature, timestamp_granularities[], stream) → json | text | srt | vtt |
 *                                   verbose_json, or SSE transcript.text.delta / transcript.text.done
 *   POST /v1/audio/speech           {model, input, voice, response_format, speed, stream_format} → audio | SSE
 *   GET  /v1/models                 {object:"list", data:[{id, object:"model", created, owned_by}]}
 *   GET  /v1/voices                 {object:"list", default, data:[VoiceInfo]} (protocol/voices.ts)
 *
 *   POST /internal/transcriptions?language=   body: 16 kHz mono PCM16 LE → 200 application/x-ndjson of
 *                                             TranscribeLine, one line per confirmed segment, then `done`
 */
import { ASR_ENGINES, type AsrEngineName, TTS_ENGINES, type TtsEngineName } from "./engines.ts";

export const INTERNAL_TRANSCRIPTIONS_PATH = "/internal/transcriptions";
/** Sample rate of the audio the edge sends to an origin for transcription. */
export const TRANSCRIBE_RATE = 16000;

/** One line of the origin's NDJSON answer. */
export type TranscribeLine =
  | {
    type: "segment";
    id: number;
    start_ms: number;
    end_ms: number;
    text: string;
    /** Score of the best alternative (engine-specific scale; CTC: log probability). */
    score: number;
    /** Word times (ms from the start of the file), when the engine aligns words; left out otherwise. */
    words?: Array<{ text: string; start_ms: number; end_ms: number }>;
  }
  | { type: "done"; duration_ms: number; segments: number }
  | { type: "error"; code: string; message: string };

export const TRANSCRIPTION_FORMATS = ["json", "text", "srt", "vtt", "verbose_json"] as const;
export type TranscriptionFormat = typeof TRANSCRIPTION_FORMATS[number];
export const SPEECH_FORMATS = ["wav", "pcm", "mp3", "opus", "flac"] as const;
export type SpeechFormat = typeof SPEECH_FORMATS[number];
/** OpenAI also names `aac`; Parley has no AAC encoder, so it is refused with a 400 naming these. */
export const SPEECH_STREAM_FORMATS = ["audio", "sse"] as const;
export const SPEECH_MAX_INPUT = 4096;
/** Speeds Parley renders (time-stretch without pitch change); OpenAI's 0.25–4.0 outside this is a 400. */
export const SPEECH_MIN_SPEED = 0.5;
export const SPEECH_MAX_SPEED = 2.0;
/** `pcm` output: OpenAI's raw format is 24 kHz 16-bit mono little-endian; Parley keeps it. */
export const SPEECH_PCM_RATE = 24000;

/** OpenAI model ids Parley answers to, and which engine kind they mean (the configured engine of that kind). */
export const OPENAI_TRANSCRIBE_MODELS = ["whisper-1", "gpt-4o-transcribe", "gpt-4o-mini-transcribe"] as const;
export const OPENAI_SPEECH_MODELS = ["tts-1", "tts-1-hd", "gpt-4o-mini-tts"] as const;

/** A transcription `model`: an OpenAI id → the configured recognizer; an engine name → that engine. */
export function transcribeModel(model: string, configured: AsrEngineName): AsrEngineName | null {
  if ((OPENAI_TRANSCRIBE_MODELS as readonly string[]).includes(model)) return configured;
  if ((ASR_ENGINES as readonly string[]).includes(model)) return model as AsrEngineName;
  return null;
}

/** A speech `model`: an OpenAI id → the configured synthesizer; an engine name → that engine. */
export function speechModel(model: string, configured: TtsEngineName): TtsEngineName | null {
  if ((OPENAI_SPEECH_MODELS as readonly string[]).includes(model)) return configured;
  if ((TTS_ENGINES as readonly string[]).includes(model)) return model as TtsEngineName;
  return null;
}

/** OpenAI's error body; `code` and `message` are also Parley's `{error:{code,message}}`. */
export interface OpenAiError {
  error: { message: string; type: string; param: string | null; code: string };
}

export interface OpenAiModel {
  id: string;
  object: "model";
  created: number;
  owned_by: string;
}

export interface TranscriptionSegment {
  id: number;
  seek: number;
  start: number;
  end: number;
  text: string;
  tokens: number[];
  temperature: number;
  avg_logprob: number;
  compression_ratio: number;
  no_speech_prob: number;
}

export interface TranscriptionWord {
  word: string;
  start: number;
  end: number;
}

/**
 * `words` of a verbose_json answer: every segment's word times in order (seconds), or null when a segment has
 * none (the engine does not align words): words are never invented.
 */
export function transcriptionWords(
  segments: Array<Extract<TranscribeLine, { type: "segment" }>>,
): TranscriptionWord[] | null {
  if (segments.some((s) => !s.words)) return null;
  return segments.flatMap((s) =>
    s.words!.map((w) => ({ word: w.text, start: w.start_ms / 1000, end: w.end_ms / 1000 }))
  );
}
