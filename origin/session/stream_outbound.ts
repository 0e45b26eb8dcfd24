/**
 * Outbound audio of a WebSocket stream session: the paced 48 kHz frames of PacedOutboundAudio (speech only,
 * `skipIdleFrames`) resampled to the stream's rate and sent as binary PCM16 frames of OUTBOUND_FRAME_MS; the
 * tail of an utterance is sent when it finishes playing. Pacing is kept (not sent as fast as synthesized) so
 * the `utterance` and `telop` events keep the same meaning as on a WebRTC session: playout time.
 */
import { OUTBOUND_FRAME_MS } from "../../protocol/listen.ts";
import { floatToInt16, StreamingResampler } from "../../lib/audio/resampler.ts";
import type { AudioFrameSink } from "./outbound_audio.ts";
import { INBOUND_RATE } from "./inbound_audio.ts";
import type { RTCAudioData } from "./wrtc.ts";

export class StreamOutboundSink implements AudioFrameSink {
  readonly #resampler: StreamingResampler;
  readonly #send: (pcm: Uint8Array) => void;
  readonly #frameSamples: number;
  #buf: Int16Array;
  #len = 0;
  /** Bytes handed to the socket. */
  bytesSent = 0;

  constructor(readonly sampleRate: number, send: (pcm: Uint8Array) => void) {
    this.#resampler = new StreamingResampler(INBOUND_RATE, sampleRate);
    this.#send = send;
    this.#frameSamples = Math.round(sampleRate * OUTBOUND_FRAME_MS / 1000);
    this.#buf = new Int16Array(this.#frameSamples * 2);
  }

  onData(data: RTCAudioData): void {
    const out = floatToInt16(this.#resampler.process(data.samples));
    if (this.#len + out.length > this.#buf.length) {
      const b = new Int16Array((this.#len + out.length) * 2);
      b.set(this.#buf.subarray(0, this.#len));
      this.#buf = b;
    }
    this.#buf.set(out, this.#len);
    this.#len += out.length;
    if (this.#len >= this.#frameSamples) this.flush();
  }

  /** Send what is buffered (end of an utterance). */
  flush(): void {
    if (this.#len === 0) return;
    const bytes = new Uint8Array(this.#buf.buffer.slice(0, this.#len * 2));
    this.#len = 0;
    this.bytesSent += bytes.length;
    this.#send(bytes);
  }
}
