/**
 * PocketSphinx behind today's `AsrEngine` interface (whole-segment `transcribe`), plus streams:
 *
 *  - `openAsrStream()`: the engine-neutral `AsrStream` of the inference worker; it holds a pooled decoder only
 *    while an utterance runs (sphinx_utterance_stream.ts), so sessions cost no decoder while silent.
 *  - `openStream()`: a stream that holds one pooled decoder for its whole life (tools, benchmarks).
 *
 * `housekeeping()` (between jobs) keeps a warm decoder idle, so the next utterance pays no model load.
 */
import type { AsrEngine, AsrStream, AsrTranscribeOptions } from "../engine.ts";
import { detectSphinx, type SphinxConfig, sphinxConfigFromEnv } from "./sphinx_detect.ts";
import { type SphinxDecoder, type SphinxPartial, type SphinxResult } from "./sphinx_decoder.ts";
import { SphinxClosedError, SphinxUnavailableError } from "./sphinx_errors.ts";
import { SphinxPool } from "./sphinx_pool.ts";
import { type SphinxAsrResult, SphinxUtteranceStream, toAsrResult } from "./sphinx_utterance_stream.ts";
import { toInt16 } from "./pcm.ts";

export type { SphinxAsrResult };
export { toInt16 };

export interface SphinxEngineOptions {
  config?: SphinxConfig;
  /** Decoders alive at once in this worker (lent + idle). Default 4. */
  maxDecoders?: number;
  /** Idle decoders kept for good when released (more are freed). Default 2. */
  keepIdle?: number;
  /** Idle decoders beyond `keepIdle` are freed after this long idle. Default 0: on release. */
  idleTimeoutMs?: number;
  /** Model loads after start-up run off the worker's thread (SphinxPool `asyncBuilds`). Default false. */
  asyncBuilds?: boolean;
  /** `housekeeping()` keeps this many idle. Default 1. */
  warmIdle?: number;
  /** Decoders built at load so the first utterances do not pay the model load. Default 1. */
  prewarm?: number;
}

/** Samples per `ps_process_raw` call in `transcribe`: 100 ms, like a live feed. */
const FEED = 1600;

export class SphinxEngine implements AsrEngine {
  readonly name = "sphinx" as const;
  readonly model: string;
  private readonly streams = new Set<SphinxStream>();
  private readonly utteranceStreams = new Set<SphinxUtteranceStream>();
  private disposed = false;
  /** Frees surplus idle decoders when no job comes to run `housekeeping()` (an origin gone quiet). */
  private readonly trimTimer?: ReturnType<typeof setInterval>;

  private constructor(readonly pool: SphinxPool) {
    const c = pool.config;
    this.model = `${c.modelDir} + ${c.jsgf ?? c.lm} + ${c.dict}`;
    if (pool.idleTimeoutMs > 0) {
      this.trimTimer = setInterval(() => pool.trimIdle(), Math.max(1_000, pool.idleTimeoutMs / 2));
      Deno.unrefTimer(this.trimTimer);
    }
  }

  /** Throws SphinxUnavailableError (one line naming the Debian packages) when PocketSphinx is missing. */
  static load(opts: SphinxEngineOptions = {}): Promise<SphinxEngine> {
    const config = opts.config ?? sphinxConfigFromEnv();
    const avail = detectSphinx(config);
    if (!avail.available) {
      return Promise.reject(new SphinxUnavailableError(avail.message, avail.missingPackages));
    }
    const pool = new SphinxPool({
      config,
      maxDecoders: opts.maxDecoders,
      keepIdle: opts.keepIdle,
      warmIdle: opts.warmIdle,
      idleTimeoutMs: opts.idleTimeoutMs,
      asyncBuilds: opts.asyncBuilds,
    });
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

  /** A stream that takes a pooled decoder per utterance. Never waits (see SphinxUtteranceStream). */
  openAsrStream(): Promise<AsrStream> {
    if (this.disposed) {
      return Promise.reject(new SphinxClosedError("sphinx engine is disposed (openAsrStream after dispose)"));
    }
    const s = new SphinxUtteranceStream(this.pool, (x) => this.utteranceStreams.delete(x));
    this.utteranceStreams.add(s);
    return Promise.resolve(s);
  }

  /** Between jobs: builds a warm idle decoder if the pool is below its warm level. True when it built one. */
  housekeeping(): boolean {
    if (this.disposed) return false;
    this.pool.trimIdle();
    return this.pool.refill();
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

  /** Closes every open stream and frees every decoder, builds in flight included once they land. Idempotent. */
  dispose(): Promise<void> {
    if (this.disposed) return this.pool.settled();
    this.disposed = true;
    clearInterval(this.trimTimer);
    for (const s of [...this.streams]) s.close();
    for (const s of [...this.utteranceStreams]) s.close();
    this.pool.close();
    return this.pool.settled();
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
