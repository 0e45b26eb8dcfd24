/**
 * A small jitter buffer between a live audio producer and the room's 10 ms tick. The producer (the publisher's
 * RTCAudioSink callbacks, or the session's own outbound clock) pushes PCM of any length; the room takes exactly
 * one 480-sample frame per tick.
 *
 * The producer's clock is not the room's: frames arrive in small bursts and the two clocks drift. So: after an
 * underrun the queue waits until `prefillFrames` are buffered before it plays again (no frame-by-frame
 * stutter), and when more than `maxFrames` are buffered the oldest are dropped (latency stays bounded instead
 * of growing with drift). Counts of both are kept for metrics.
 */
import { FRAME_SAMPLES } from "../session/outbound_audio.ts";

export class SourceQueue {
  readonly #prefill: number;
  readonly #max: number;
  #buf: Int16Array;
  #len = 0;
  #playing = false;
  readonly #frame = new Int16Array(FRAME_SAMPLES);
  /** Times the queue ran dry while playing (then refilled to prefillFrames before playing again). */
  underruns = 0;
  /** Samples dropped because the queue exceeded maxFrames. */
  droppedSamples = 0;

  constructor(opts: { prefillFrames?: number; maxFrames?: number } = {}) {
    this.#prefill = opts.prefillFrames ?? 2;
    this.#max = Math.max(this.#prefill + 1, opts.maxFrames ?? 8);
    this.#buf = new Int16Array((this.#max + 2) * FRAME_SAMPLES);
  }

  /** Buffered samples. */
  get length(): number {
    return this.#len;
  }

  push(samples: Int16Array): void {
    let src = samples;
    const cap = this.#max * FRAME_SAMPLES;
    if (src.length > cap) {
      this.droppedSamples += src.length - cap;
      src = src.subarray(src.length - cap);
    }
    const overflow = this.#len + src.length - cap;
    if (overflow > 0) {
      this.#buf.copyWithin(0, overflow, this.#len);
      this.#len -= overflow;
      this.droppedSamples += overflow;
    }
    this.#buf.set(src, this.#len);
    this.#len += src.length;
  }

  /** The next frame (a reused buffer), or null when nothing is ready (the caller plays silence). */
  pop(): Int16Array | null {
    if (!this.#playing) {
      if (this.#len < this.#prefill * FRAME_SAMPLES) return null;
      this.#playing = true;
    }
    if (this.#len < FRAME_SAMPLES) {
      this.#playing = false;
      this.underruns++;
      return null;
    }
    this.#frame.set(this.#buf.subarray(0, FRAME_SAMPLES));
    this.#buf.copyWithin(0, FRAME_SAMPLES, this.#len);
    this.#len -= FRAME_SAMPLES;
    return this.#frame;
  }

  clear(): void {
    this.#len = 0;
    this.#playing = false;
  }
}
