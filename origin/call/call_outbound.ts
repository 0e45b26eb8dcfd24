/**
 * A phone call's side of the session's paced playout (origin/session/outbound_audio.ts): the RTP send clock
 * (20 ms) pulls two 10 ms frames of 48 kHz playout whenever it has less than a packet queued, they are
 * resampled to 8 kHz and queued on the call, and the RTP session encodes them as G.711. One clock drives both,
 * so playout never drifts against packetization; playout notifications, barge-in `clear()` and utterance
 * bookkeeping stay those of PacedOutboundAudio.
 */
import { floatToInt16, StreamingResampler } from "../../lib/audio/resampler.ts";
import type { FrameDriver } from "../session/outbound_audio.ts";

type Tick = () => void;

/** FrameDriver whose ticks run when the RTP clock asks for audio (not on a timer of its own). */
export class PulledFrameDriver implements FrameDriver {
  #tick: Tick | undefined;

  add(tick: Tick): void {
    this.#tick = tick;
  }

  remove(tick: Tick): void {
    if (this.#tick === tick) this.#tick = undefined;
  }

  /** One 20 ms packet's worth: two 10 ms frames. */
  pull(): void {
    this.#tick?.();
    this.#tick?.();
  }
}

/** The `source` of the call's PacedOutboundAudio: 48 kHz frames → 8 kHz samples for the call. */
export class CallOutboundSink {
  readonly #resampler = new StreamingResampler(48_000, 8_000);

  constructor(private readonly send: (pcm8k: Int16Array) => void) {}

  onData(d: { samples: Int16Array }): void {
    const out = floatToInt16(this.#resampler.process(d.samples));
    if (out.length > 0) this.send(out);
  }
}
