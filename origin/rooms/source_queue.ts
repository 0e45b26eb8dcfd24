/**
 * A small adaptive jitter buffer between a live audio producer and the room's 10 ms tick. The producer (the
 * publisher's RTCAudioSink callbacks, or the session's own outbound clock) pushes PCM of any length; the room
 * takes exactly one 480-sample frame per tick.
 *
 * The producer's clock is not the room's: frames arrive in bursts (an RTCAudioSink delivers everything queued
 * during an event-loop stall at once), the room's clock may skip frames after a stall, and the two clocks drift.
 * Audio is never thrown away just because a burst arrived: the buffer holds up to `maxFrames` (a hard cap,
 * large enough for a long stall). Latency is brought back down instead by draining: the lowest fill level seen
 * over each window of `windowFrames` pops is the delay nobody needed; when it exceeds `targetFrames` the excess
 * is shed one frame per tick, from quiet frames (below `quietLevel` mean amplitude) so that no word is cut, or
 * from any frame once the excess has waited `forceAfterFrames` pops (a talker who never pauses). After an
 * underrun the queue waits until `prefillFrames` are buffered before it plays again (no frame-by-frame
 * stutter). Counts of drops and underruns are kept for metrics.
 */
import { FRAME_SAMPLES } from "../session/outbound_audio.ts";

export interface SourceQueueOptions {
  /** Frames buffered before playing (again) after an underrun. Default 2. */
  prefillFrames?: number;
  /** Hard cap: past it the oldest samples are dropped. Default 50 (500 ms). */
  maxFrames?: number;
  /** Fill level the drain brings a standing backlog down to. Default prefillFrames + 2. */
  targetFrames?: number;
  /** Pops per observation window of the minimum fill level. Default 50 (500 ms). */
  windowFrames?: number;
  /** Mean absolute amplitude (Int16) below which a frame may be shed. Default 100 (about -50 dBFS). */
  quietLevel?: number;
  /** Pops after which an excess is shed from any frame, quiet or not. Default 200 (2 s). */
  forceAfterFrames?: number;
}

export class SourceQueue {
  readonly #prefill: number;
  readonly #max: number;
  readonly #target: number;
  readonly #window: number;
  readonly #quiet: number;
  readonly #forceAfter: number;
  #buf: Int16Array;
  #len = 0;
  #playing = false;
  readonly #frame = new Int16Array(FRAME_SAMPLES);
  /** Lowest fill (frames) seen in the current window, and pops into it. */
  #windowMin = Infinity;
  #windowPops = 0;
  /** Frames to shed, and pops since that excess was found. */
  #excess = 0;
  #excessAge = 0;
  /** Times the queue ran dry while playing (then refilled to prefillFrames before playing again). */
  underruns = 0;
  /** Samples dropped: past the hard cap, or shed by the drain. */
  droppedSamples = 0;

  constructor(opts: SourceQueueOptions = {}) {
    this.#prefill = opts.prefillFrames ?? 2;
    this.#max = Math.max(this.#prefill + 1, opts.maxFrames ?? 50);
    this.#target = Math.min(this.#max - 1, opts.targetFrames ?? this.#prefill + 2);
    this.#window = opts.windowFrames ?? 50;
    this.#quiet = opts.quietLevel ?? 100;
    this.#forceAfter = opts.forceAfterFrames ?? 200;
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
      this.#resetDrain();
    }
    if (this.#len < FRAME_SAMPLES) {
      this.#playing = false;
      this.underruns++;
      this.#resetDrain();
      return null;
    }
    this.#observe();
    // Shed at most one frame per pop, and only while another full frame remains to be played.
    if (this.#excess > 0 && this.#len >= 2 * FRAME_SAMPLES) {
      this.#excessAge++;
      if (this.#excessAge >= this.#forceAfter || this.#isQuiet()) {
        this.#shift(null);
        this.droppedSamples += FRAME_SAMPLES;
        this.#excess--;
      }
    }
    this.#shift(this.#frame);
    return this.#frame;
  }

  clear(): void {
    this.#len = 0;
    this.#playing = false;
    this.#resetDrain();
  }

  #observe(): void {
    const frames = Math.floor(this.#len / FRAME_SAMPLES);
    if (frames < this.#windowMin) this.#windowMin = frames;
    if (++this.#windowPops < this.#window) return;
    // The frame about to be played is counted in the fill: the backlog beyond target is what can go.
    const excess = this.#windowMin - 1 - this.#target;
    if (excess > 0 && this.#excess === 0) {
      this.#excess = excess;
      this.#excessAge = 0;
    }
    this.#windowMin = Infinity;
    this.#windowPops = 0;
  }

  #resetDrain(): void {
    this.#windowMin = Infinity;
    this.#windowPops = 0;
    this.#excess = 0;
    this.#excessAge = 0;
  }

  #isQuiet(): boolean {
    let sum = 0;
    for (let i = 0; i < FRAME_SAMPLES; i++) {
      const s = this.#buf[i];
      sum += s < 0 ? -s : s;
    }
    return sum / FRAME_SAMPLES < this.#quiet;
  }

  /** Take the oldest frame into `into` (or discard it). */
  #shift(into: Int16Array | null): void {
    into?.set(this.#buf.subarray(0, FRAME_SAMPLES));
    this.#buf.copyWithin(0, FRAME_SAMPLES, this.#len);
    this.#len -= FRAME_SAMPLES;
  }
}
