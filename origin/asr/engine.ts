/**
 * Speech recognition engines behind one interface. An engine turns a whole 16 kHz mono segment into ranked
 * alternatives; streaming (partials) is done by the pipeline re-decoding the growing segment.
 *
 *  - `ctc`: the bundled Wav2Vec2-style CTC recognizer (models/parley-asr-en) via `loadCtcRecognizer`
 *    (origin/asr/ctc_decoder.ts), with beam-search alternatives.
 *  - `whisper`: Transformers.js `automatic-speech-recognition` with any Whisper model (a local folder under
 *    MODELS_DIR, or a Hub id such as `onnx-community/whisper-base` when ALLOW_REMOTE_MODELS is true).
 *
 * Engines are loaded inside inference workers (origin/inference), never on the media event loop.
 */
import type { Alternative } from "../../protocol/session_messages.ts";

export const ASR_ENGINES = ["ctc", "whisper"] as const;
export type AsrEngineName = typeof ASR_ENGINES[number];

export interface AsrConfig {
  engine: AsrEngineName;
  /** Folder name under modelsDir, an absolute path, or (whisper, remote allowed) a Hub id. */
  model: string;
  modelsDir: string;
  allowRemoteModels: boolean;
  /** Whisper: spoken language hint (e.g. "en"); ignored by English-only models. */
  language?: string;
  /** onnxruntime intra-op threads per worker. 1 is best with several workers on few cores. */
  intraOpNumThreads: number;
  /** Whisper: max new tokens per decode. */
  maxNewTokens?: number;
}

export interface AsrResult {
  /** Best first; text trimmed. */
  alternatives: Alternative[];
  /**
   * 0..1 confidence of the best alternative, when the engine can tell (CTC: mean per-frame max posterior of the
   * non-blank frames); null when it cannot (Whisper via the pipeline API).
   */
  confidence: number | null;
  /** Wall time the engine spent, ms. */
  inferenceMs: number;
}

export interface AsrTranscribeOptions {
  /** false for partial (interim) decodes. */
  final?: boolean;
  /** Session language (e.g. "en", "de"); used by multilingual engines, ignored by the others. */
  language?: string;
}

export interface AsrEngine {
  readonly name: AsrEngineName;
  readonly model: string;
  /**
   * `final: false` marks a partial (interim) decode: engines may use a cheaper search (CTC: narrow beam, 1-best),
   * since the confirmed decode at segment end uses the full one.
   */
  transcribe(pcm16k: Float32Array, opts?: AsrTranscribeOptions): Promise<AsrResult>;
  dispose(): Promise<void>;
}

export const DEFAULT_ASR_CONFIG: AsrConfig = {
  engine: "ctc",
  model: "parley-asr-en",
  modelsDir: new URL("../../models/", import.meta.url).pathname,
  allowRemoteModels: false,
  intraOpNumThreads: 1,
};

/** Build a config from env-like values (the lead's config module parses env and calls this). */
export function asrConfigFrom(values: {
  ASR_ENGINE?: string;
  ASR_MODEL?: string;
  MODELS_DIR?: string;
  ALLOW_REMOTE_MODELS?: string | boolean;
  ASR_LANGUAGE?: string;
}): AsrConfig {
  const engine = (values.ASR_ENGINE ?? DEFAULT_ASR_CONFIG.engine) as AsrEngineName;
  if (!ASR_ENGINES.includes(engine)) throw new Error(`ASR_ENGINE must be one of ${ASR_ENGINES.join("|")}`);
  const allow = values.ALLOW_REMOTE_MODELS;
  return {
    ...DEFAULT_ASR_CONFIG,
    engine,
    model: values.ASR_MODEL ?? (engine === "whisper" ? "onnx-community/whisper-base" : "parley-asr-en"),
    modelsDir: values.MODELS_DIR ?? DEFAULT_ASR_CONFIG.modelsDir,
    allowRemoteModels: allow === true || allow === "true" || allow === "1",
    language: values.ASR_LANGUAGE,
  };
}

/** Whisper's classic hallucinations on non-speech and our quality filter for any engine. */
const HALLUCINATIONS = [
  /^\W*$/,
  /^\s*(thank you|thanks for watching|you|bye)[.!]*\s*$/i,
  /^\s*\[.*\]\s*$/,
  /^\s*\(.*\)\s*$/,
];

/** True when a result should not be shown (empty, punctuation only, known hallucination, looping). */
export function isJunkTranscript(text: string): boolean {
  if (HALLUCINATIONS.some((r) => r.test(text))) return true;
  const words = text.toLowerCase().split(/\s+/).filter(Boolean);
  if (words.length >= 8) {
    // one word/bigram repeated across most of the text = decoder loop
    const counts = new Map<string, number>();
    for (const w of words) counts.set(w, (counts.get(w) ?? 0) + 1);
    if (Math.max(...counts.values()) / words.length > 0.6) return true;
  }
  return false;
}

export async function loadAsrEngine(config: AsrConfig): Promise<AsrEngine> {
  if (config.engine === "whisper") {
    const { WhisperEngine } = await import("./whisper_engine.ts");
    return await WhisperEngine.load(config);
  }
  const { CtcEngine } = await import("./ctc_engine.ts");
  return await CtcEngine.load(config);
}

export function resolveModelDir(config: { model: string; modelsDir: string }): string {
  if (config.model.startsWith("/")) return config.model;
  return `${config.modelsDir.replace(/\/$/, "")}/${config.model}`;
}
