/**
 * Paced outbound audio: feeds a session's RTCAudioSource exactly one 10 ms frame (480 samples, 48 kHz mono Int16)
 * per clock tick: queued synthesized PCM when there is some, silence otherwise, so the receiver never sees a
 * burst or a gap in the RTP stream.
 *
 * One process-wide `FrameClock` drives every session's source (one timer, not one per session). It is
 * drift-corrected: tick k is due at t0 + k·10 ms on the monotonic clock and each timeout is scheduled for the
 * next due time, so timer lateness never accumulates. If the event loop stalls, the clock catches up at most
 * MAX_CATCHUP_PER_TICK frames per tick (a small, bounded burst the jitter buffer absorbs); a backlog larger than
 * MAX_BACKLOG_FRAMES is dropped (the timeline is resynced and the skip counted) instead of being flushed at once.
 * Each source measures the gap between its consecutive frames (`parley_outbound_frame_gap_seconds`).
 */
import { registry } from "../../lib/metrics.ts";
import type { OutboundAudio } from "../pipeline/types.ts";
import type { MediaStreamTrack, RTCAudioData, RTCAudioSource } from "./wrtc.ts";

/** Where paced frames go: a WebRTC RTCAudioSource, or a stream session's socket writer. */
export interface AudioFrameSink {
  onData(data: RTCAudioData): void;
}

export const FRAME_MS = 10;
export const SAMPLE_RATE = 48_000;
export const FRAME_SAMPLES = SAMPLE_RATE / 100;
const MAX_CATCHUP_PER_TICK = 2;
const MAX_BACKLOG_FRAMES = 5;

const gapHistogram = registry.histogram(
  "parley_outbound_frame_gap_seconds",
  "Gap between consecutive outbound audio frames handed to a session's RTCAudioSource",
  [0.002, 0.005, 0.008, 0.0095, 0.0105, 0.012, 0.015, 0.02, 0.03, 0.05, 0.1, 0.25],
);
const clockSkips = registry.counter(
  "parley_outbound_clock_skipped_frames_total",
  "Frames the outbound clock dropped after an event-loop stall longer than the catch-up window",
);

/** Frames dropped by the clock after stalls, process-wide (benchmarks). */
export function outboundClockSkips(): number {
  return clockSkips.get();
}

type Tick = () => void;

/** What drives a PacedOutboundAudio: calls each added tick once per 10 ms frame. */
export interface FrameDriver {
  add(tick: Tick): void;
  remove(tick: Tick): void;
}

/** The process-wide 10 ms clock. Runs only while it has subscribers (so idle processes and tests hold no timer). */
export class FrameClock implements FrameDriver {
  #subs = new Set<Tick>();
  #timer: ReturnType<typeof setTimeout> | undefined;
  #t0 = 0;
  #n = 0;

  get size(): number {
    return this.#subs.size;
  }

  /** During a tick: when its frame was due (epoch ms), however late the timer fired; between ticks, the last. */
  get frameAt(): number {
    return performance.timeOrigin + this.#t0 + (this.#n - 1) * FRAME_MS;
  }

  add(tick: Tick): void {
    this.#subs.add(tick);
    if (this.#timer === undefined) {
      this.#t0 = performance.now();
      this.#n = 0;
      this.#schedule();
    }
  }

  remove(tick: Tick): void {
    this.#subs.delete(tick);
    if (this.#subs.size === 0 && this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
  }

  #schedule(): void {
    const due = this.#t0 + this.#n * FRAME_MS;
    this.#timer = setTimeout(() => this.#tick(), Math.max(0, due - performance.now()));
  }

  #tick(): void {
    this.#timer = undefined;
    const now = performance.now();
    let due = Math.floor((now - this.#t0) / FRAME_MS) + 1 - this.#n;
    if (due > MAX_BACKLOG_FRAMES) {
      // A stall longer than the catch-up window: drop the backlog rather than burst it.
      const skipped = due - 1;
      this.#n += skipped;
      clockSkips.inc(undefined, skipped);
      due = 1;
    }
    const frames = Math.max(1, Math.min(due, MAX_CATCHUP_PER_TICK));
    for (let f = 0; f < frames; f++) {
      this.#n++;
      for (const tick of [...this.#subs]) {
        try {
          tick();
        } catch (err) {
          console.error("outbound frame tick failed", err);
        }
      }
    }
    if (this.#subs.size > 0) this.#schedule();
  }
}

/** The default process-wide clock. */
export const frameClock: FrameClock = new FrameClock();

interface Chunk {
  utteranceId: string;
  pcm: Int16Array;
  offset: number;
}

type PlayoutListener = Parameters<OutboundAudio["onPlayout"]>[0];

export interface PacedOutboundAudioOptions {
  source: AudioFrameSink;
  /** Session time (ms since active) for playout notifications. */
  now: () => number;
  clock?: FrameDriver;
  /** Keep every frame gap (ms) in memory for exact percentiles (benchmarks). Default false. */
  recordGaps?: boolean;
  /**
   * Hand the sink only frames that carry queued audio (a WebSocket stream sends speech, not a continuous
   * track). Default false: an RTP track needs a frame every 10 ms, silence included.
   */
  skipIdleFrames?: boolean;
}

export class PacedOutboundAudio implements OutboundAudio {
  readonly #source: AudioFrameSink;
  readonly #now: () => number;
  readonly #clock: FrameDriver;
  readonly #frame = new Int16Array(FRAME_SAMPLES);
  readonly #queue: Chunk[] = [];
  readonly #ended = new Set<string>();
  readonly #started = new Set<string>();
  readonly #played = new Map<string, number>();
  readonly #listeners: PlayoutListener[] = [];
  readonly #tick = () => this.#emitFrame();
  #queuedSamples = 0;
  #running = false;
  #closed = false;
  #lastFrameAt = 0;
  /** Frames handed to the source so far. */
  frames = 0;
  /** Time spent inside RTCAudioSource.onData (total and worst call), ms. */
  onDataMs = 0;
  onDataMaxMs = 0;
  /** Largest gap seen between consecutive frames, ms. */
  maxGapMs = 0;
  readonly gapsMs: number[] | undefined;
  /** Sees every frame handed to the source (a room's `voice` source); the buffer is only valid in the call. */
  onFrame: ((frame: Int16Array) => void) | undefined;
  readonly #skipIdle: boolean;

  constructor(opts: PacedOutboundAudioOptions) {
    this.#source = opts.source;
    this.#skipIdle = opts.skipIdleFrames ?? false;
    this.#now = opts.now;
    this.#clock = opts.clock ?? frameClock;
    this.gapsMs = opts.recordGaps ? [] : undefined;
  }

  /** Start feeding frames (silence until something is queued). */
  start(): void {
    if (this.#running || this.#closed) return;
    this.#running = true;
    this.#lastFrameAt = 0;
    this.#clock.add(this.#tick);
  }

  /** Stop feeding and drop the queue. Idempotent; the track itself is stopped by its owner (the Session). */
  close(): void {
    this.#closed = true;
    if (this.#running) this.#clock.remove(this.#tick);
    this.#running = false;
    this.#queue.length = 0;
    this.#queuedSamples = 0;
    this.#listeners.length = 0;
  }

  get running(): boolean {
    return this.#running;
  }

  enqueue(utteranceId: string, pcm48k: Int16Array): void {
    if (this.#closed || pcm48k.length === 0) return;
    this.#queue.push({ utteranceId, pcm: pcm48k, offset: 0 });
    this.#queuedSamples += pcm48k.length;
  }

  endUtterance(utteranceId: string): void {
    if (this.#closed) return;
    this.#ended.add(utteranceId);
  }

  clear(): Array<{ utteranceId: string; playedMs: number }> {
    const cut = new Map<string, number>();
    for (const c of this.#queue) cut.set(c.utteranceId, this.#playedMs(c.utteranceId));
    for (const id of this.#started) if (!cut.has(id)) cut.set(id, this.#playedMs(id));
    this.#queue.length = 0;
    this.#queuedSamples = 0;
    for (const id of cut.keys()) this.#forget(id);
    return [...cut].map(([utteranceId, playedMs]) => ({ utteranceId, playedMs }));
  }

  queuedMs(): number {
    return this.#queuedSamples / (SAMPLE_RATE / 1000);
  }

  onPlayout(listener: PlayoutListener): void {
    if (!this.#closed) this.#listeners.push(listener);
  }

  #playedMs(id: string): number {
    return (this.#played.get(id) ?? 0) / (SAMPLE_RATE / 1000);
  }

  #forget(id: string): void {
    this.#started.delete(id);
    this.#ended.delete(id);
    this.#played.delete(id);
  }

  #notify(utteranceId: string, phase: "started" | "finished"): void {
    const e = { utteranceId, phase, sessionTimeMs: this.#now(), playedMs: this.#playedMs(utteranceId) };
    for (const l of this.#listeners) {
      try {
        l(e);
      } catch (err) {
        console.error("playout listener failed", err);
      }
    }
  }

  #emitFrame(): void {
    if (this.#skipIdle && this.#queue.length === 0 && this.#ended.size === 0) {
      this.#lastFrameAt = 0; // an idle stream has no frame gaps to measure
      return;
    }
    const frame = this.#frame;
    let filled = 0;
    while (filled < FRAME_SAMPLES && this.#queue.length > 0) {
      const c = this.#queue[0];
      if (!this.#started.has(c.utteranceId)) {
        this.#started.add(c.utteranceId);
        this.#notify(c.utteranceId, "started");
      }
      const n = Math.min(FRAME_SAMPLES - filled, c.pcm.length - c.offset);
      frame.set(c.pcm.subarray(c.offset, c.offset + n), filled);
      filled += n;
      c.offset += n;
      this.#queuedSamples -= n;
      this.#played.set(c.utteranceId, (this.#played.get(c.utteranceId) ?? 0) + n);
      if (c.offset >= c.pcm.length) this.#queue.shift();
    }
    if (filled < FRAME_SAMPLES) frame.fill(0, filled);
    const t = performance.now();
    if (this.#lastFrameAt > 0) {
      const gap = t - this.#lastFrameAt;
      gapHistogram.observe(gap / 1000);
      if (gap > this.maxGapMs) this.maxGapMs = gap;
      this.gapsMs?.push(gap);
    }
    this.#lastFrameAt = t;
    this.frames++;
    this.onFrame?.(frame);
    if (!this.#skipIdle || filled > 0) {
      this.#source.onData({ samples: frame, sampleRate: SAMPLE_RATE, bitsPerSample: 16, channelCount: 1 });
    }
    const spent = performance.now() - t;
    this.onDataMs += spent;
    if (spent > this.onDataMaxMs) this.onDataMaxMs = spent;
    // Finished: ended utterances with nothing left in the queue.
    for (const id of this.#ended) {
      if (this.#queue.some((c) => c.utteranceId === id)) continue;
      if (!this.#started.has(id)) {
        this.#started.add(id);
        this.#notify(id, "started");
      }
      this.#notify(id, "finished");
      this.#forget(id);
    }
  }
}

/** Owner-side helper: a source plus its track, created together and released together. */
export interface SourceAndTrack {
  source: RTCAudioSource;
  track: MediaStreamTrack;
}
