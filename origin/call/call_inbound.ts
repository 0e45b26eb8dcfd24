/**
 * A phone call's audio into the speech pipeline: 20 ms of 8 kHz PCM (decoded G.711, after the jitter buffer)
 * → the pipeline's InboundFrame (10 ms of 48 kHz), resampled with the pipeline's polyphase windowed-sinc
 * filter so the narrowband signal gains no imaging above 4 kHz. Timestamps count samples, like WebRTC input.
 */
import { floatToInt16, StreamingResampler } from "../../lib/audio/resampler.ts";
import type { InboundFrame } from "../pipeline/types.ts";

const OUT_RATE = 48_000;
const FRAME = OUT_RATE / 100;

export class CallInbound {
  readonly #resampler = new StreamingResampler(8_000, OUT_RATE);
  #pending = new Int16Array(0);
  #samples48 = 0;
  #firstAt: number | undefined;
  /** Frames delivered. */
  frames = 0;

  constructor(
    private readonly now: () => number,
    private readonly onFrame: (frame: InboundFrame) => void,
  ) {}

  push(pcm8k: Int16Array): void {
    const receivedAt = performance.now();
    const up = floatToInt16(this.#resampler.process(pcm8k));
    const all = new Int16Array(this.#pending.length + up.length);
    all.set(this.#pending);
    all.set(up, this.#pending.length);
    let off = 0;
    this.#firstAt ??= this.now();
    for (; off + FRAME <= all.length; off += FRAME) {
      const timestampMs = this.#firstAt + this.#samples48 / (OUT_RATE / 1000);
      this.#samples48 += FRAME;
      this.frames++;
      this.onFrame({ samples: all.slice(off, off + FRAME), sampleRate: OUT_RATE, timestampMs, receivedAt });
    }
    this.#pending = all.slice(off);
  }
}
