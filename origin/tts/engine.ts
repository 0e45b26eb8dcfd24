/**
 * Speech synthesis engines behind one interface, returning PCM plus word/phoneme timings (ms from the start of
 * the returned audio). Reused by the live pipeline (sentence by sentence) and by the TTS job worker.
 *
 *  - `espeak` (default, offline): npm:@echogarden/espeak-ng-emscripten, exact word/phoneme events.
 *  - `vits`: Transformers.js `text-to-audio` (VITS / MMS-TTS); timings are estimated from text length and the
 *    result is marked `estimated: true`.
 */
import type { TelopPhoneme, TelopWord } from "../../protocol/session_messages.ts";

export const TTS_ENGINES = ["espeak", "vits"] as const;
export type TtsEngineName = typeof TTS_ENGINES[number];

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

export interface SynthesisEngine {
  readonly name: TtsEngineName;
  synthesize(text: string, voice?: string): Promise<SynthesisResult>;
  listVoices(): Promise<Voice[]>;
  close(): Promise<void>;
}

export interface TtsConfig {
  engine: TtsEngineName;
  /** Default voice: espeak voice (e.g. "en-us") or, for vits, ignored (one voice per model). */
  voice: string;
  /** vits: model folder under modelsDir or Hub id (e.g. "Xenova/mms-tts-eng"). */
  vitsModel?: string;
  modelsDir: string;
  allowRemoteModels: boolean;
  intraOpNumThreads: number;
}

export const DEFAULT_TTS_CONFIG: TtsConfig = {
  engine: "espeak",
  voice: "en-us",
  modelsDir: new URL("../../models/", import.meta.url).pathname,
  allowRemoteModels: false,
  intraOpNumThreads: 1,
};

export async function loadSynthesisEngine(config: TtsConfig): Promise<SynthesisEngine> {
  if (config.engine === "vits") {
    const { VitsEngine } = await import("./vits_engine.ts");
    return await VitsEngine.load(config);
  }
  const { EspeakEngine } = await import("./espeak_engine.ts");
  return await EspeakEngine.load(config.voice);
}

/**
 * Split text into sentences for incremental synthesis, keeping character offsets into the original text
 * (telop char ranges refer to the full utterance text). Long sentences are split at commas/semicolons past
 * `maxChars` so the first chunk starts playing early.
 */
export function splitSentences(text: string, maxChars = 200): Array<{ text: string; offset: number }> {
  const out: Array<{ text: string; offset: number }> = [];
  const re = /[^.!?。！？\n]+(?:[.!?。！？]+["'”’)\]]*|\n|$)/g;
  for (const m of text.matchAll(re)) {
    let s = m[0];
    let off = m.index!;
    while (s.length > maxChars) {
      const cut = Math.max(
        s.lastIndexOf(",", maxChars),
        s.lastIndexOf(";", maxChars),
        s.lastIndexOf(" ", maxChars),
      );
      const at = cut > maxChars / 3 ? cut + 1 : maxChars;
      pushTrimmed(out, s.slice(0, at), off);
      s = s.slice(at);
      off += at;
    }
    pushTrimmed(out, s, off);
  }
  return out;
}

function pushTrimmed(out: Array<{ text: string; offset: number }>, s: string, off: number): void {
  const lead = s.length - s.trimStart().length;
  const t = s.trim();
  if (t) out.push({ text: t, offset: off + lead });
}

/** Estimated timings: words get time proportional to their length; letters map to rough visemes. */
export function estimateTimings(
  text: string,
  durationMs: number,
  visemeOfLetter: (c: string) => TelopPhoneme["viseme"],
): { words: SynthWord[]; phonemes: SynthPhoneme[] } {
  const words: SynthWord[] = [];
  const phonemes: SynthPhoneme[] = [];
  const tokens = [...text.matchAll(/\S+/g)];
  const weight = (w: string) => w.replace(/[^\p{L}\p{N}]/gu, "").length + 1; // +1: gap
  const total = tokens.reduce((s, t) => s + weight(t[0]), 0) || 1;
  let t = 0;
  for (const tok of tokens) {
    const d = (durationMs * weight(tok[0])) / total;
    const letters = [...tok[0].replace(/[^\p{L}\p{N}]/gu, "")];
    words.push({
      text: tok[0].replace(/^[^\p{L}\p{N}]+|[^\p{L}\p{N}]+$/gu, ""),
      start_ms: Math.round(t),
      duration_ms: Math.round(d),
      char_start: tok.index!,
      char_end: tok.index! + tok[0].length,
    });
    const per = letters.length ? (d * (letters.length / (letters.length + 1))) / letters.length : 0;
    letters.forEach((c, i) =>
      phonemes.push({
        phoneme: c,
        start_ms: Math.round(t + i * per),
        duration_ms: Math.round(per),
        viseme: visemeOfLetter(c),
      })
    );
    t += d;
  }
  return { words, phonemes };
}
