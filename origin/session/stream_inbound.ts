/**
 * Inbound audio of a WebSocket stream session: binary frames of PCM16 mono (optionally a WAV header first) →
 * InboundFrame callbacks of 10 ms, 48 kHz mono Int16 with session timestamps, exactly what a WebRTC session's
 * RTCAudioSink path delivers, so the speech pipeline cannot tell the two apart.
 *
 * Every frame is checked before it is used, and a bad one throws ListenViolation (the session closes the
 * stream with its code and reason): larger than MAX_FRAME_BYTES or MAX_FRAME_MS (1009), an odd byte count or
 * a malformed WAV header (1007), a WAV that is not PCM16 mono or outside 8–48 kHz (1003), audio before the rate
 * is known (1007), audio running ahead of real time by more than MAX_REALTIME_FACTOR plus
 * REALTIME_ALLOWANCE_MS (1008). Timestamps count samples (not arrival times), as in inbound_audio.ts.
 */
import { parseWavHeader } from "../../lib/audio/wav_parse.ts";
import { InvalidAudioError, UnsupportedAudioError } from "../../lib/audio/errors.ts";
import {
  LISTEN_CLOSE,
  ListenViolation,
  MAX_FRAME_BYTES,
  MAX_FRAME_MS,
  MAX_REALTIME_FACTOR,
  MAX_SAMPLE_RATE,
  MIN_SAMPLE_RATE,
  REALTIME_ALLOWANCE_MS,
} from "../../protocol/listen.ts";
import { floatToInt16, StreamingResampler } from "../../lib/audio/resampler.ts";
import type { InboundFrame } from "../pipeline/types.ts";
import { INBOUND_RATE, peakOf } from "./inbound_audio.ts";

const FRAME_48K = INBOUND_RATE / 100;

export interface StreamInboundOptions {
  /** From the query; a WAV header in the first frame may set it instead. */
  sampleRate?: number;
  /** Session time (ms since active). */
  now: () => number;
  onFrame: (frame: InboundFrame) => void;
  /** Peak |sample| above which a frame counts as carrying audio. Default 8. */
  energyThreshold?: number;
}

export class StreamInbound {
  readonly #now: () => number;
  readonly #onFrame: (frame: InboundFrame) => void;
  readonly #threshold: number;
  #rate: number | undefined;
  #resampler: StreamingResampler | undefined;
  #carry = new Int16Array(0);
  #firstFrame = true;
  #firstAt: number | undefined;
  #firstPerf = 0;
  #samplesIn = 0;
  #samples48 = 0;
  /** Binary frames accepted. */
  frames = 0;
  /** performance.now() of the last 10 ms frame with energy above the threshold (0 = never). */
  lastEnergyAt = 0;

  constructor(opts: StreamInboundOptions) {
    this.#now = opts.now;
    this.#onFrame = opts.onFrame;
    this.#threshold = opts.energyThreshold ?? 8;
    if (opts.sampleRate !== undefined) this.#setRate(opts.sampleRate);
  }

  get sampleRate(): number | undefined {
    return this.#rate;
  }

  /** ms of audio received so far. */
  get audioMs(): number {
    return this.#rate ? this.#samplesIn * 1000 / this.#rate : 0;
  }

  #setRate(rate: number): void {
    this.#rate = rate;
    this.#resampler = new StreamingResampler(rate, INBOUND_RATE);
  }

  /** One binary frame. Throws ListenViolation; never anything else. */
  push(bytes: Uint8Array): void {
    if (bytes.length > MAX_FRAME_BYTES) {
      throw new ListenViolation(
        LISTEN_CLOSE.tooBig,
        `binary frame of ${bytes.length} bytes; at most ${MAX_FRAME_BYTES}`,
      );
    }
    let pcm = bytes;
    if (this.#firstFrame) {
      this.#firstFrame = false;
      if (bytes.length >= 4 && String.fromCharCode(...bytes.subarray(0, 4)) === "RIFF") {
        pcm = this.#header(bytes);
      }
    }
    if (pcm.length === 0) return;
    if (!this.#rate) {
      throw new ListenViolation(
        LISTEN_CLOSE.invalidPayload,
        "no sample_rate in the query and the first frame is not a WAV header",
      );
    }
    if (pcm.length % 2 !== 0) {
      throw new ListenViolation(LISTEN_CLOSE.invalidPayload, `PCM16 frame of odd length ${pcm.length} bytes`);
    }
    const n = pcm.length / 2;
    if (n * 1000 / this.#rate > MAX_FRAME_MS) {
      throw new ListenViolation(
        LISTEN_CLOSE.tooBig,
        `frame holds ${Math.round(n * 1000 / this.#rate)} ms of audio; at most ${MAX_FRAME_MS} ms`,
      );
    }
    const t = performance.now();
    if (this.#firstAt === undefined) {
      this.#firstAt = this.#now();
      this.#firstPerf = t;
    }
    this.#samplesIn += n;
    const ahead = this.audioMs - MAX_REALTIME_FACTOR * (t - this.#firstPerf);
    if (ahead > REALTIME_ALLOWANCE_MS) {
      throw new ListenViolation(
        LISTEN_CLOSE.policy,
        `audio arrives faster than ${MAX_REALTIME_FACTOR}x real time; stream it at its own pace`,
      );
    }
    this.frames++;
    // Copy into an aligned Int16Array (a frame's byteOffset may be odd).
    const samples = new Int16Array(n);
    new Uint8Array(samples.buffer).set(pcm);
    this.#emit(floatToInt16(this.#resampler!.process(samples)), t);
  }

  #header(bytes: Uint8Array): Uint8Array {
    // The header describes a stream whose length is unknown here: open-ended RIFF size, so any data size is
    // taken as "to the end of the stream".
    const copy = bytes.slice();
    let info;
    try {
      if (copy.length >= 8) new DataView(copy.buffer).setUint32(4, 0xffffffff, true);
      info = parseWavHeader(copy);
    } catch (err) {
      if (err instanceof UnsupportedAudioError) {
        throw new ListenViolation(LISTEN_CLOSE.unsupportedData, err.detail);
      }
      if (err instanceof InvalidAudioError) {
        throw new ListenViolation(LISTEN_CLOSE.invalidPayload, err.message);
      }
      throw new ListenViolation(LISTEN_CLOSE.invalidPayload, "WAV: unreadable header");
    }
    if (info.sampleFormat !== "pcm" || info.bitsPerSample !== 16 || info.channels !== 1) {
      throw new ListenViolation(
        LISTEN_CLOSE.unsupportedData,
        `WAV must be PCM16 mono; got ${info.channels} channel(s) of ${info.bitsPerSample}-bit ${info.sampleFormat}`,
      );
    }
    if (info.sampleRate < MIN_SAMPLE_RATE || info.sampleRate > MAX_SAMPLE_RATE) {
      throw new ListenViolation(
        LISTEN_CLOSE.unsupportedData,
        `WAV sample rate ${info.sampleRate} Hz; must be ${MIN_SAMPLE_RATE}–${MAX_SAMPLE_RATE} Hz`,
      );
    }
    if (this.#rate !== undefined && this.#rate !== info.sampleRate) {
      throw new ListenViolation(
        LISTEN_CLOSE.invalidPayload,
        `WAV header says ${info.sampleRate} Hz but sample_rate is ${this.#rate}`,
      );
    }
    if (this.#rate === undefined) this.#setRate(info.sampleRate);
    return bytes.subarray(info.dataOffset);
  }

  #emit(s48: Int16Array, receivedAt: number): void {
    let buf = s48;
    if (this.#carry.length) {
      buf = new Int16Array(this.#carry.length + s48.length);
      buf.set(this.#carry);
      buf.set(s48, this.#carry.length);
    }
    let off = 0;
    for (; off + FRAME_48K <= buf.length; off += FRAME_48K) {
      const samples = buf.slice(off, off + FRAME_48K);
      const timestampMs = this.#firstAt! + this.#samples48 / (INBOUND_RATE / 1000);
      this.#samples48 += FRAME_48K;
      if (peakOf(samples) > this.#threshold) this.lastEnergyAt = receivedAt;
      this.#onFrame({ samples, sampleRate: INBOUND_RATE, timestampMs, receivedAt });
    }
    this.#carry = buf.slice(off);
  }
}
