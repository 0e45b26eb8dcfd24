/**
 * A recognition stream (engine-neutral `AsrStream`) that holds a pooled decoder only while an utterance runs:
 * the first audio of an utterance takes a decoder, `finish`/`cancel`/`close` give it back (reset, kept warm or
 * freed by the pool). A session that is silent, or between utterances, holds no native memory, so the decoders
 * a worker needs follow the utterances it decodes at once, not the sessions it serves.
 *
 * No audio is lost when every decoder is lent: the utterance's audio waits here (16-bit, in order) and is fed
 * as soon as a decoder is free (next call); its confirmed result takes an overflow decoder rather than wait,
 * because the worker serves one job at a time and no release could come while it waited.
 */
import type { AsrResult, AsrStream } from "../engine.ts";
import { registry } from "../../../lib/metrics.ts";
import type { SphinxDecoder, SphinxResult } from "./sphinx_decoder.ts";
import type { SphinxPool } from "./sphinx_pool.ts";
import { SphinxClosedError } from "./sphinx_errors.ts";
import { toInt16 } from "./pcm.ts";

const mWaited = registry.counter(
  "parley_sphinx_audio_waited_seconds_total",
  "Utterance audio held for a free decoder before decoding, s",
);

export interface SphinxAsrResult extends AsrResult {
  words: SphinxResult["words"];
}

export function toAsrResult(r: SphinxResult, inferenceMs: number): SphinxAsrResult {
  return {
    alternatives: r.text ? [{ text: r.text, score: r.confidence ?? 0 }] : [],
    confidence: r.confidence,
    inferenceMs,
    words: r.words,
  };
}

export class SphinxUtteranceStream implements AsrStream {
  private decoder: SphinxDecoder | null = null;
  /** Audio of the running utterance not yet fed (no decoder was free). */
  private backlog: Int16Array[] = [];
  private backlogSamples = 0;
  /** This utterance already asked the pool for a build (off-thread builds): do not ask again. */
  private asked = false;
  private isClosed = false;

  constructor(
    private readonly pool: SphinxPool,
    private readonly onClose: (s: SphinxUtteranceStream) => void,
  ) {}

  get closed(): boolean {
    return this.isClosed;
  }

  /** Whether this stream holds a decoder now (tests, stats). */
  get holdsDecoder(): boolean {
    return this.decoder !== null;
  }

  /** Samples waiting for a decoder. */
  get waitingSamples(): number {
    return this.backlogSamples;
  }

  process(pcm16k: Float32Array | Int16Array): void {
    this.assertOpen("process");
    const pcm = toInt16(pcm16k);
    const d = this.decoder ?? this.tryTake();
    if (!d) {
      if (pcm.length) {
        this.backlog.push(pcm === pcm16k ? pcm.slice() : pcm);
        this.backlogSamples += pcm.length;
      }
      return;
    }
    d.process(pcm);
  }

  partial(): string {
    this.assertOpen("partial");
    const d = this.decoder ?? (this.backlogSamples ? this.tryTake() : null);
    return d?.inUtterance ? d.partial().text : "";
  }

  finish(): SphinxAsrResult {
    this.assertOpen("finish");
    const t0 = performance.now();
    if (!this.decoder && !this.backlogSamples) return toAsrResult(emptyResult(), 0);
    const d = this.decoder ?? this.startOn(this.pool.takeOverflow());
    this.decoder = null;
    this.asked = false;
    try {
      const r = d.finish();
      return toAsrResult(r, performance.now() - t0);
    } finally {
      this.pool.release(d);
    }
  }

  cancel(): void {
    this.asked = false;
    this.backlog = [];
    this.backlogSamples = 0;
    const d = this.decoder;
    this.decoder = null;
    if (d) this.pool.release(d);
  }

  /** Gives back the decoder if one is held. Idempotent. */
  close(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    try {
      this.cancel();
    } finally {
      this.onClose(this);
    }
  }

  private tryTake(): SphinxDecoder | null {
    // Only the utterance's first try may start a build; later tries take whatever is idle by then.
    const d = this.pool.take(!this.asked);
    this.asked = !d;
    return d ? this.startOn(d) : null;
  }

  /** Starts an utterance on `d` and feeds it whatever waited. */
  private startOn(d: SphinxDecoder): SphinxDecoder {
    this.decoder = d;
    try {
      d.start();
      if (this.backlogSamples) mWaited.inc(undefined, this.backlogSamples / 16000);
      for (const piece of this.backlog) d.process(piece);
    } catch (e) {
      this.decoder = null;
      this.pool.release(d);
      throw e;
    } finally {
      this.backlog = [];
      this.backlogSamples = 0;
    }
    return d;
  }

  private assertOpen(what: string): void {
    if (this.isClosed) throw new SphinxClosedError(`sphinx stream is closed (${what} after close)`);
  }
}

function emptyResult(): SphinxResult {
  return { text: "", words: [], confidence: null, audioMs: 0 };
}
