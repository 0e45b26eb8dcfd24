/**
 * eSpeak NG (WASM, npm:@echogarden/espeak-ng-emscripten): 22050 Hz Int16, word and phoneme events with audio
 * positions in ms. Synchronous inside the WASM module — run it in an inference worker, not on the media loop.
 */
import EspeakInitializer from "@echogarden/espeak-ng-emscripten";
import type {
  SynthesisEngine,
  SynthesisOptions,
  SynthesisResult,
  SynthPhoneme,
  SynthWord,
  Voice,
} from "./engine.ts";
import { visemeOf } from "./visemes.ts";
import { ClosedError } from "../../lib/closed_error.ts";
import { MAX_SPEED, MIN_SPEED } from "../../protocol/voices.ts";

interface EspeakEvent {
  type: string;
  text_position: number;
  word_length: number;
  audio_position: number;
  id?: string | number;
}

// deno-lint-ignore no-explicit-any
type EspeakWorker = any;

/** eSpeak NG's default speaking rate (words per minute); `speed` scales it. */
const ESPEAK_DEFAULT_WPM = 175;

export class EspeakEngine implements SynthesisEngine {
  readonly name = "espeak" as const;
  private currentVoice = "";
  private currentRate = ESPEAK_DEFAULT_WPM;
  private constructor(private w: EspeakWorker | null, private readonly defaultVoice: string) {}

  static async load(defaultVoice = "en-us"): Promise<EspeakEngine> {
    // deno-lint-ignore no-explicit-any
    const m = await (EspeakInitializer as any)();
    const e = new EspeakEngine(new m.eSpeakNGWorker(), defaultVoice);
    e.setVoice(defaultVoice);
    return e;
  }

  private setVoice(voice: string): void {
    if (voice === this.currentVoice) return;
    const ok = this.w.set_voice(voice);
    if (ok === false || (typeof ok === "number" && ok !== 0)) {
      throw new Error(`unknown espeak voice "${voice}"`);
    }
    this.currentVoice = voice;
    this.currentRate = -1; // a voice change may reset the rate: set it again
  }

  synthesize(text: string, voice?: string, opts: SynthesisOptions = {}): Promise<SynthesisResult> {
    try {
      return Promise.resolve(this.synthesizeSync(text, voice, opts.speed ?? 1));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  private synthesizeSync(text: string, voice: string | undefined, speed: number): SynthesisResult {
    if (!this.w) throw new ClosedError("espeak engine");
    if (!(speed >= MIN_SPEED && speed <= MAX_SPEED)) {
      throw new RangeError(`speed must be between ${MIN_SPEED} and ${MAX_SPEED}, got ${speed}`);
    }
    this.setVoice(voice || this.defaultVoice);
    const rate = Math.round(ESPEAK_DEFAULT_WPM * speed);
    if (rate !== this.currentRate) {
      this.w.set_rate(rate);
      this.currentRate = rate;
    }
    const chunks: Int16Array[] = [];
    const events: EspeakEvent[] = [];
    let n = 0;
    this.w.synthesize(text, (samples: Int16Array, evs: EspeakEvent[]) => {
      if (samples?.length) {
        chunks.push(samples.slice());
        n += samples.length;
      }
      if (evs) { for (const e of evs) events.push({ ...e }); }
      return false;
    });
    const sampleRate = this.w.samplerate ?? 22050;
    const pcm = new Int16Array(n);
    let o = 0;
    for (const c of chunks) {
      pcm.set(c, o);
      o += c.length;
    }
    const durationMs = (n * 1000) / sampleRate;
    return { pcm, sampleRate, durationMs, ...timingsFromEvents(text, events, durationMs), estimated: false };
  }

  listVoices(): Promise<Voice[]> {
    if (!this.w) return Promise.reject(new ClosedError("espeak engine"));
    const vs = this.w.list_voices() as Array<
      { name: string; identifier: string; languages: Array<{ name: string }> }
    >;
    const seen = new Set<string>();
    return Promise.resolve(
      vs.filter((v) => {
        const id = v.languages[0]?.name ?? v.identifier;
        if (seen.has(id)) return false;
        seen.add(id);
        return true;
      }).map((v) => ({
        id: v.languages[0]?.name ?? v.identifier,
        name: v.name,
        languages: v.languages.map((l) => l.name),
        engine: "espeak" as const,
      })),
    );
  }

  close(): Promise<void> {
    const w = this.w;
    this.w = null;
    try {
      w?.delete?.();
    } catch { /* already freed */ }
    return Promise.resolve();
  }
}

/** Word and phoneme timings from espeak events (text_position is 1-based; audio_position in ms). */
export function timingsFromEvents(
  text: string,
  events: EspeakEvent[],
  durationMs: number,
): { words: SynthWord[]; phonemes: SynthPhoneme[] } {
  const marks = events.filter((e) => e.type === "word" || e.type === "phoneme" || e.type === "end");
  const phonemes: SynthPhoneme[] = [];
  const words: SynthWord[] = [];
  const nextBoundary = (i: number, pred: (e: EspeakEvent) => boolean) => {
    for (let j = i + 1; j < marks.length; j++) if (pred(marks[j])) return marks[j].audio_position;
    return durationMs;
  };
  for (let i = 0; i < marks.length; i++) {
    const e = marks[i];
    if (e.type === "phoneme" && e.id) {
      const end = nextBoundary(i, (x) => x.type === "phoneme" || x.type === "end" || x.type === "word");
      const ph = String(e.id);
      phonemes.push({
        phoneme: ph,
        start_ms: Math.round(e.audio_position),
        duration_ms: Math.max(0, Math.round(end - e.audio_position)),
        viseme: visemeOf(ph),
      });
    } else if (e.type === "word") {
      // word ends at the next word, or at the first pause/end after its phonemes
      const end = nextBoundary(
        i,
        (x) => x.type === "word" || x.type === "end" || (x.type === "phoneme" && !x.id),
      );
      const charStart = Math.max(0, e.text_position - 1);
      const charEnd = Math.min(text.length, charStart + e.word_length);
      words.push({
        text: text.slice(charStart, charEnd),
        start_ms: Math.round(e.audio_position),
        duration_ms: Math.max(0, Math.round(end - e.audio_position)),
        char_start: charStart,
        char_end: charEnd,
      });
    }
  }
  return { words, phonemes };
}
