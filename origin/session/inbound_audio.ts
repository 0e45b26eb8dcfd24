/**
 * Inbound audio: the remote audio track's RTCAudioSink → InboundFrame callbacks of 10 ms, 48 kHz mono Int16 with
 * session timestamps.
 *
 * The sink delivers 48 kHz / 480 samples per call, 100 calls per second, but its first 1–2 calls can be
 * 16 kHz / 160 samples: those (and any other rate) are converted to 48 kHz here by linear interpolation, so
 * consumers always get 48 kHz. Timestamps count samples (not arrival times): frame k starts at
 * firstFrameSessionTime + (samples before it) / 48, so they are monotonic and jitter-free.
 *
 * The sink keeps firing (with zeros) after the sender stops, so "media present" is judged by energy: the last
 * time a frame's peak exceeded `energyThreshold` (`lastEnergyAt`) drives the session's media timeout.
 * `stop()` must be called (an unstopped sink keeps the process alive forever).
 */
import type { InboundFrame } from "../pipeline/types.ts";
import { type MediaStreamTrack, type RTCAudioData, RTCAudioSink } from "./wrtc.ts";

export const INBOUND_RATE = 48_000;

export interface InboundAudioOptions {
  track: MediaStreamTrack;
  /** Session time (ms since active). */
  now: () => number;
  onFrame: (frame: InboundFrame) => void;
  /** Peak |sample| above which a frame counts as carrying audio. Default 8 (≈ −72 dBFS). */
  energyThreshold?: number;
}

/** Linear-interpolation conversion of one mono frame to 48 kHz. */
export function to48k(samples: Int16Array, rate: number): Int16Array {
  if (rate === INBOUND_RATE) return samples.slice();
  const outLen = Math.round(samples.length * INBOUND_RATE / rate);
  const out = new Int16Array(outLen);
  const step = rate / INBOUND_RATE;
  const last = samples.length - 1;
  for (let i = 0; i < outLen; i++) {
    const pos = i * step;
    const j = Math.floor(pos);
    const frac = pos - j;
    const a = samples[Math.min(j, last)];
    const b = samples[Math.min(j + 1, last)];
    out[i] = Math.round(a + (b - a) * frac);
  }
  return out;
}

export function peakOf(samples: Int16Array): number {
  let peak = 0;
  for (let i = 0; i < samples.length; i++) {
    const v = samples[i] < 0 ? -samples[i] : samples[i];
    if (v > peak) peak = v;
  }
  return peak;
}

export class InboundAudio {
  readonly #sink;
  readonly #now: () => number;
  readonly #onFrame: (frame: InboundFrame) => void;
  readonly #threshold: number;
  #firstAt: number | undefined;
  #samples48 = 0;
  /** Frames delivered (after conversion). */
  frames = 0;
  /** Frames that arrived at a rate other than 48 kHz (converted). */
  convertedFrames = 0;
  /** performance.now() of the last frame with energy above the threshold (0 = never). */
  lastEnergyAt = 0;
  /** performance.now() of the last frame (0 = never). */
  lastFrameAt = 0;
  /** Peak of the most recent frame. */
  lastPeak = 0;

  constructor(opts: InboundAudioOptions) {
    this.#now = opts.now;
    this.#onFrame = opts.onFrame;
    this.#threshold = opts.energyThreshold ?? 8;
    this.#sink = new RTCAudioSink(opts.track);
    this.#sink.ondata = (d) => this.#handle(d);
  }

  get stopped(): boolean {
    return this.#sink.stopped;
  }

  #handle(d: RTCAudioData): void {
    if (this.#sink.stopped) return;
    const receivedAt = performance.now();
    const channels = d.channelCount ?? 1;
    let mono = d.samples;
    if (channels > 1) {
      mono = new Int16Array(Math.floor(d.samples.length / channels));
      for (let i = 0; i < mono.length; i++) mono[i] = d.samples[i * channels];
    }
    if (d.sampleRate !== INBOUND_RATE) this.convertedFrames++;
    const samples = to48k(mono, d.sampleRate);
    this.#firstAt ??= this.#now();
    const timestampMs = this.#firstAt + this.#samples48 / (INBOUND_RATE / 1000);
    this.#samples48 += samples.length;
    this.frames++;
    this.lastFrameAt = receivedAt;
    this.lastPeak = peakOf(samples);
    if (this.lastPeak > this.#threshold) this.lastEnergyAt = receivedAt;
    this.#onFrame({ samples, sampleRate: INBOUND_RATE, timestampMs, receivedAt });
  }

  /** Idempotent. */
  stop(): void {
    if (!this.#sink.stopped) this.#sink.stop();
    this.#sink.ondata = null;
  }
}
