/**
 * A streaming PocketSphinx decoder: one native `ps_decoder_t` fed 16 kHz mono Int16 audio as it arrives.
 *
 *   const d = SphinxDecoder.open(config);
 *   d.start(); d.process(chunk); d.partial().text; …; const r = d.finish(); d.close();
 *
 * `process` searches each chunk once (nothing is re-decoded); `partial` reads the running hypothesis;
 * `finish` ends the utterance, runs the lattice best path and returns words with times and confidences.
 *
 * Confidence measure: a word's confidence is its lattice posterior probability, `exp` of `ps_seg_prob` converted
 * from the decoder's log base with `logmath_exp` — the forward-backward mass of all lattice paths through that
 * word over the mass of all paths, in [0, 1]. The segment confidence is the duration-weighted mean of its word
 * posteriors (null when no word was recognized). With `-bestpath no` PocketSphinx reports every posterior as 1.
 *
 * Native ownership: the decoder owns its `ps_decoder_t` and the `cmd_ln_t` it was built from; `close()` frees
 * both (`ps_free`, `cmd_ln_free_r`) and is idempotent. Every other buffer is a JS typed array.
 */
import { log } from "../../../lib/log.ts";
import { registry } from "../../../lib/metrics.ts";
import { detectSphinx, type SphinxConfig, sphinxConfigFromEnv } from "./sphinx_detect.ts";
import {
  SphinxClosedError,
  SphinxDecodeError,
  SphinxInitError,
  SphinxUnavailableError,
} from "./sphinx_errors.ts";
import { CStringArray, readCString, type SphinxLibrary, sphinxLibrary } from "./sphinx_ffi.ts";

export const SPHINX_SAMPLE_RATE = 16000;
/** PocketSphinx's default frame rate (-frate 100): one frame = 10 ms. */
export const SPHINX_FRAME_MS = 10;

export interface SphinxWord {
  text: string;
  /** From the start of the utterance (the first sample passed to `process` after `start`). */
  start_ms: number;
  end_ms: number;
  /** Lattice posterior probability, 0..1. */
  confidence: number;
}

export interface SphinxPartial {
  text: string;
}

export interface SphinxResult {
  text: string;
  words: SphinxWord[];
  /** Duration-weighted mean word posterior; null when no word was recognized. */
  confidence: number | null;
  /** Audio fed in this utterance, ms. */
  audioMs: number;
}

type State = "idle" | "utterance" | "finished";

const log_ = log.child({ component: "sphinx" });
const mInit = registry.histogram(
  "parley_sphinx_decoder_init_seconds",
  "PocketSphinx decoder init (ps_init) time",
  [
    0.1,
    0.25,
    0.5,
    1,
    2,
    5,
  ],
);
const mOpen = registry.gauge(
  "parley_sphinx_decoders_open",
  "PocketSphinx native decoders alive in this isolate",
);
const mUtterances = registry.counter("parley_sphinx_utterances_total", "PocketSphinx utterances finished");
const mAudio = registry.counter("parley_sphinx_audio_seconds_total", "Audio fed to PocketSphinx decoders, s");
const mProcess = registry.counter("parley_sphinx_process_seconds_total", "Wall time in ps_process_raw, s");

/** Non-words in the segmentation: sentence marks, silence, noise models (`<s>`, `</s>`, `<sil>`, `[NOISE]`, `++X++`). */
export function isFillerWord(word: string): boolean {
  return word.startsWith("<") || word.startsWith("[") || word.startsWith("++") || word === "";
}

/** `read(2)` → `read`: the dictionary's alternate-pronunciation marker is not part of the word. */
export function baseWord(word: string): string {
  return word.replace(/\(\d+\)$/, "");
}

export class SphinxDecoder {
  private ps: Deno.PointerValue;
  private config: Deno.PointerValue;
  private logmath: Deno.PointerValue;
  private state: State = "idle";
  private samples = 0;
  private last: SphinxResult | null = null;
  private readonly score = new Int32Array(1);

  private constructor(
    private readonly lib: SphinxLibrary,
    ps: Deno.PointerValue,
    config: Deno.PointerValue,
    readonly settings: SphinxConfig,
  ) {
    this.ps = ps;
    this.config = config;
    this.logmath = lib.ps.ps_get_logmath(ps);
  }

  /**
   * Loads the model and builds a native decoder (synchronous, the slow part: run it in a worker).
   * Throws SphinxUnavailableError when files are missing, SphinxInitError when PocketSphinx refuses them.
   */
  static open(settings: SphinxConfig = sphinxConfigFromEnv()): SphinxDecoder {
    const b = SphinxDecoder.begin(settings);
    let ps: Deno.PointerValue;
    try {
      ps = b.lib.ps.ps_init(b.config);
    } catch (e) {
      b.abandon();
      throw e;
    }
    return b.complete(ps);
  }

  /**
   * Like `open`, but the model load (`ps_init`, most of the cost) runs on a thread of Deno's blocking pool, so
   * the calling worker keeps serving its other streams meanwhile. Decoders share no mutable native state (the
   * library's logging is set once, at load, and decoders are built without `-logfn`), so a build may run while
   * other decoders decode.
   */
  static async openAsync(settings: SphinxConfig = sphinxConfigFromEnv()): Promise<SphinxDecoder> {
    const b = SphinxDecoder.begin(settings);
    let ps: Deno.PointerValue;
    try {
      ps = await b.lib.ps.ps_init_nonblocking(b.config);
    } catch (e) {
      b.abandon();
      throw e;
    }
    return b.complete(ps);
  }

  /** Checks, parses the arguments and holds the library (so it cannot be unloaded under a build in flight). */
  private static begin(settings: SphinxConfig) {
    const avail = detectSphinx(settings);
    if (!avail.available) throw new SphinxUnavailableError(avail.message, avail.missingPackages);
    const lib = sphinxLibrary(settings.libDir);
    const t0 = performance.now();
    // No `-logfn`: it would reopen the library's one global log file while other decoders may be writing to it.
    const args = new CStringArray([
      "-hmm",
      settings.modelDir,
      "-dict",
      settings.dict,
      ...(settings.jsgf ? ["-jsgf", settings.jsgf] : ["-lm", settings.lm]),
      ...settings.extraArgs,
    ]);
    const { ps: P, base: B } = lib;
    const config = B.cmd_ln_parse_r(null, P.ps_args(), args.length, args.argv, 1);
    if (!config) {
      throw new SphinxInitError(
        `PocketSphinx rejected the decoder arguments ${JSON.stringify(args.values)} (SPHINX_LOG=1 shows why)`,
      );
    }
    lib.hold();
    const abandon = () => {
      lib.release();
      B.cmd_ln_free_r(config);
    };
    const complete = (ps: Deno.PointerValue): SphinxDecoder => {
      if (!ps) {
        abandon();
        const what = settings.jsgf ? `grammar ${settings.jsgf}` : `LM ${settings.lm}`;
        const msg =
          `PocketSphinx could not load model ${settings.modelDir}, ${what}, dict ${settings.dict} (SPHINX_LOG=1 shows why)`;
        log_.error("sphinx decoder init failed", { modelDir: settings.modelDir });
        throw new SphinxInitError(msg);
      }
      mOpen.inc();
      const seconds = (performance.now() - t0) / 1000;
      mInit.observe(seconds);
      log_.debug("sphinx decoder ready", { initMs: Math.round(seconds * 1000), modelDir: settings.modelDir });
      return new SphinxDecoder(lib, ps, config, settings);
    };
    return { lib, config, abandon, complete };
  }

  get closed(): boolean {
    return this.ps === null;
  }

  /** True between `start()` and `finish()`/`reset()`. */
  get inUtterance(): boolean {
    return this.state === "utterance";
  }

  private handle(what: string): NonNullable<Deno.PointerValue> {
    if (!this.ps) throw new SphinxClosedError(`sphinx decoder is closed (${what} after close)`);
    return this.ps;
  }

  /**
   * Begins an utterance. Throws if one is already running (finish or reset it first). Each utterance is a new
   * PocketSphinx stream: segment times count from its first sample (PocketSphinx reports stream-wide times), and
   * the front end's noise estimate does not carry over from whoever used a pooled decoder before.
   */
  start(): void {
    const ps = this.handle("start");
    if (this.state === "utterance") throw new SphinxDecodeError("sphinx utterance already started");
    if (this.lib.ps.ps_start_stream(ps) < 0) throw new SphinxDecodeError("ps_start_stream failed");
    if (this.lib.ps.ps_start_utt(ps) < 0) throw new SphinxDecodeError("ps_start_utt failed");
    this.state = "utterance";
    this.samples = 0;
    this.last = null;
  }

  /** Feeds 16 kHz mono Int16 samples; searches them now, once. */
  process(chunk: Int16Array): void {
    const ps = this.handle("process");
    if (this.state !== "utterance") throw new SphinxDecodeError("sphinx process() before start()");
    if (chunk.length === 0) return;
    const t0 = performance.now();
    const r = this.lib.ps.ps_process_raw(ps, chunk, BigInt(chunk.length), 0, 0);
    mProcess.inc(undefined, (performance.now() - t0) / 1000);
    if (r < 0) throw new SphinxDecodeError(`ps_process_raw failed (${r})`);
    this.samples += chunk.length;
    mAudio.inc(undefined, chunk.length / SPHINX_SAMPLE_RATE);
  }

  /** The running hypothesis (words so far, may still change). After `finish`, the final text. */
  partial(): SphinxPartial {
    const ps = this.handle("partial");
    if (this.state === "finished") return { text: this.last?.text ?? "" };
    if (this.state !== "utterance") return { text: "" };
    const text = readCString(this.lib.ps.ps_get_hyp(ps, this.score));
    return { text: text.split(" ").filter((w) => w && !isFillerWord(w)).map(baseWord).join(" ") };
  }

  /** Ends the utterance and returns the confirmed result. */
  finish(): SphinxResult {
    const ps = this.handle("finish");
    if (this.state !== "utterance") throw new SphinxDecodeError("sphinx finish() without start()");
    const P = this.lib.ps;
    this.state = "finished";
    if (P.ps_end_utt(ps) < 0) throw new SphinxDecodeError("ps_end_utt failed");
    const words = this.segments(ps);
    let conf = 0, dur = 0;
    for (const w of words) {
      const d = Math.max(SPHINX_FRAME_MS, w.end_ms - w.start_ms);
      conf += w.confidence * d;
      dur += d;
    }
    let text = words.map((w) => w.text).join(" ");
    if (!words.length) {
      // a hypothesis without a segmentation (should not happen): keep its words, no timings
      text = readCString(P.ps_get_hyp(ps, this.score)).split(" ").filter((w) => w && !isFillerWord(w))
        .map(baseWord).join(" ");
    }
    const audioMs = (this.samples * 1000) / SPHINX_SAMPLE_RATE;
    this.last = { text, words, confidence: dur > 0 ? conf / dur : null, audioMs };
    mUtterances.inc();
    return this.last;
  }

  private segments(ps: NonNullable<Deno.PointerValue>): SphinxWord[] {
    const { ps: P, base: B } = this.lib;
    const sf = new Int32Array(1), ef = new Int32Array(1);
    const ascr = new Int32Array(1), lscr = new Int32Array(1), lback = new Int32Array(1);
    const words: SphinxWord[] = [];
    let it = P.ps_seg_iter(ps);
    try {
      while (it) {
        const raw = readCString(P.ps_seg_word(it));
        P.ps_seg_frames(it, sf, ef);
        const logp = P.ps_seg_prob(it, ascr, lscr, lback);
        if (!isFillerWord(raw)) {
          const p = this.logmath ? B.logmath_exp(this.logmath, logp) : 1;
          words.push({
            text: baseWord(raw),
            start_ms: sf[0] * SPHINX_FRAME_MS,
            end_ms: (ef[0] + 1) * SPHINX_FRAME_MS,
            confidence: Math.min(1, Math.max(0, p)),
          });
        }
        it = P.ps_seg_next(it); // frees the iterator at the end
      }
    } finally {
      if (it) P.ps_seg_free(it);
    }
    return words;
  }

  /** Abandons any running utterance; the decoder is ready for `start()` again. */
  reset(): void {
    const ps = this.handle("reset");
    if (this.state === "utterance") this.lib.ps.ps_end_utt(ps);
    this.state = "idle";
    this.samples = 0;
    this.last = null;
  }

  /** Frees the native decoder and its config. Idempotent. */
  close(): void {
    const ps = this.ps;
    if (!ps) return;
    this.ps = null;
    this.logmath = null;
    const config = this.config;
    this.config = null;
    try {
      if (this.state === "utterance") this.lib.ps.ps_end_utt(ps);
    } finally {
      this.lib.ps.ps_free(ps);
      if (config) this.lib.base.cmd_ln_free_r(config);
      this.lib.release();
      mOpen.dec();
    }
  }
}
