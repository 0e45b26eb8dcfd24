/**
 * PocketSphinx behind today's `AsrEngine` interface (whole-segment `transcribe`, so the current re-decoding
 * pipeline can use it as it is), plus the streaming API for a recognizer that feeds audio as it arrives:
 * `openStream()` lends a pooled decoder for the life of one stream.
 *
 * `openAsrStream()` is the same stream behind the engine-neutral `AsrStream` interface (the inference worker's).
 */
import type { AsrEngine, AsrResult, AsrStream, AsrTranscribeOptions } from "../engine.ts";
import { detectSphinx, type SphinxConfig, sphinxConfigFromEnv } from "./sphinx_detect.ts";
import {
  type SphinxDecoder,
  type SphinxPartial,
  type SphinxResult,
  type SphinxWord,
} from "./sphinx_decoder.ts";
import { SphinxBusyError, SphinxClosedError, SphinxUnavailableError } from "./sphinx_errors.ts";
import { SphinxPool } from "./sphinx_pool.ts";

export interface SphinxAsrResult extends AsrResult {
  /** Word timings (ms from the segment start) and posteriors of the best alternative. */
  words: SphinxWord[];
}

export interface SphinxEngineOptions {
  config?: SphinxConfig;
  /** Decoders kept for concurrent streams/segments in this worker. Default 4. */
  maxDecoders?: number;
  /** Decoders built at load so the first segment does not pay the model load. Default 1. */
  prewarm?: number;
}

/** Samples per `ps_process_raw` call in `transcribe`: 100 ms, like a live feed. */
const FEED = 1600;

/** [-1, 1] float → Int16 with clipping (the decoder takes 16-bit PCM). */
export function toInt16(x: Float32Array | Int16Array): Int16Array {
  if (x instanceof Int16Array) return x;
  const out = new Int16Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = Math.max(-32768, Math.min(32767, Math.round(x[i] * 32767)));
  return out;
}

function toAsrResult(r: SphinxResult, inferenceMs: number): SphinxAsrResult {
  return {
    alternatives: r.text ? [{ text: r.text, score: r.confidence ?? 0 }] : [],
    confidence: r.confidence,
    inferenceMs,
    words: r.words,
  };
}

export class SphinxEngine implements AsrEngine {
  readonly name = "sphinx" as const;
  readonly model: string;
  private readonly streams = new Set<SphinxStream>();
  private disposed = false;

  private constructor(readonly pool: SphinxPool) {
    const c = pool.config;
    this.model = `${c.modelDir} + ${c.jsgf ?? c.lm} + ${c.dict}`;
  }

  /** Throws SphinxUnavailableError (one line naming the Debian packages) when PocketSphinx is missing. */
  static load(opts: SphinxEngineOptions = {}): Promise<SphinxEngine> {
    const config = opts.config ?? sphinxConfigFromEnv();
    const avail = detectSphinx(config);
    if (!avail.available) {
      return Promise.reject(new SphinxUnavailableError(avail.message, avail.missingPackages));
    }
    const pool = new SphinxPool({ config, maxDecoders: opts.maxDecoders });
    try {
      pool.prewarm(opts.prewarm ?? 1);
    } catch (e) {
      pool.close();
      return Promise.reject(e);
    }
    return Promise.resolve(new SphinxEngine(pool));
  }

  /** Decodes a whole 16 kHz segment (fed in 100 ms pieces). `opts` are accepted for the interface; unused. */
  async transcribe(pcm16k: Float32Array, _opts?: AsrTranscribeOptions): Promise<SphinxAsrResult> {
    if (this.disposed) throw new SphinxClosedError("sphinx engine is disposed (transcribe after dispose)");
    const t0 = performance.now();
    const d = await this.pool.acquire();
    let r: SphinxResult;
    try {
      const pcm = toInt16(pcm16k);
      d.start();
      for (let i = 0; i < pcm.length; i += FEED) d.process(pcm.subarray(i, i + FEED));
      r = d.finish();
    } finally {
      this.pool.release(d);
    }
    return toAsrResult(r, performance.now() - t0);
  }

  /**
   * `openStream()` as an engine-neutral `AsrStream`. Never waits: with every decoder lent it throws
   * SphinxBusyError (a worker serving streams one job at a time must not block on a release).
   */
  async openAsrStream(): Promise<AsrStream> {
    const st = this.pool.stats();
    if (st.idle === 0 && st.lent >= this.pool.maxDecoders) {
      throw new SphinxBusyError(
        `all ${this.pool.maxDecoders} PocketSphinx decoders of this worker are in use`,
      );
    }
    const s = await this.openStream();
    return {
      process: (pcm) => s.process(pcm),
      partial: () => s.partial().text,
      finish: () => {
        const t0 = performance.now();
        return toAsrResult(s.finish(), performance.now() - t0);
      },
      cancel: () => {
        if (s.inUtterance) s.cancel();
      },
      close: () => s.close(),
    };
  }

  /** A streaming recognizer for one audio stream; holds one pooled decoder until its `close()`. */
  async openStream(signal?: AbortSignal): Promise<SphinxStream> {
    if (this.disposed) throw new SphinxClosedError("sphinx engine is disposed (openStream after dispose)");
    const d = await this.pool.acquire(signal);
    if (this.disposed) {
      this.pool.release(d);
      throw new SphinxClosedError("sphinx engine is disposed (openStream after dispose)");
    }
    const s = new SphinxStream(d, (x) => {
      this.streams.delete(x);
      this.pool.release(d);
    });
    this.streams.add(s);
    return s;
  }

  /** Closes every open stream and frees every decoder. Idempotent. */
  dispose(): Promise<void> {
    if (this.disposed) return Promise.resolve();
    this.disposed = true;
    for (const s of [...this.streams]) s.close();
    this.pool.close();
    return Promise.resolve();
  }
}

/**
 * One stream's utterances: `process` starts an utterance when none is running, `partial` reads the running
 * hypothesis, `finish` confirms it (times from the utterance's first sample); the next `process` starts the
 * next utterance on the same decoder.
 */
export class SphinxStream {
  private decoder: SphinxDecoder | null;
  constructor(decoder: SphinxDecoder, private readonly onClose: (s: SphinxStream) => void) {
    this.decoder = decoder;
  }

  get closed(): boolean {
    return this.decoder === null;
  }

  private get d(): SphinxDecoder {
    if (!this.decoder) throw new SphinxClosedError("sphinx stream is closed");
    return this.decoder;
  }

  get inUtterance(): boolean {
    return this.decoder?.inUtterance ?? false;
  }

  /** 16 kHz mono audio: Int16, or float in [-1, 1]. */
  process(pcm16k: Float32Array | Int16Array): void {
    const d = this.d;
    if (!d.inUtterance) {
      d.reset();
      d.start();
    }
    d.process(toInt16(pcm16k));
  }

  partial(): SphinxPartial {
    return this.d.inUtterance ? this.d.partial() : { text: "" };
  }

  /** Confirms the running utterance; an empty result when none was started. */
  finish(): SphinxResult {
    const d = this.d;
    if (!d.inUtterance) return { text: "", words: [], confidence: null, audioMs: 0 };
    return d.finish();
  }

  /** Drops the running utterance without a result. */
  cancel(): void {
    this.d.reset();
  }

  /** Gives the decoder back to the pool (reset there). Idempotent. */
  close(): void {
    if (!this.decoder) return;
    this.decoder = null;
    this.onClose(this);
  }
}
