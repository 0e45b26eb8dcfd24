/**
 * One libopus encoder (opusscript, libopus in WASM) that turns whole PCM frames into raw Opus packets: the
 * part shared by Ogg Opus output (./encode.ts) and the rooms' once-per-program encoders
 * (origin/rooms/program_encoder.ts). `close()` frees the WASM state (idempotent).
 */
import OpusScript from "opusscript";
import { EncoderCapacityError } from "./errors.ts";

/** libopus CTL request codes (opus_defines.h). */
const OPUS_SET_BITRATE_REQUEST = 4002;
const OPUS_SET_COMPLEXITY_REQUEST = 4010;

/** libopus' look-ahead at 48 kHz (Fs/400 + Fs/250), the pre-skip every decoder must drop. */
export const OPUS_PRE_SKIP = 312;

/**
 * opusscript's WASM memory. It grows only while an instance is constructed (encoding allocates nothing), and
 * growing detaches every older view; the view an instance makes last (`outPCM`) is therefore current until
 * the next construction.
 */
let opusHeap: ArrayBuffer | null = null;

/** The parts of an opusscript instance that encode() uses (see there for why). */
interface OpusInternals {
  outPCM: Uint16Array;
  inPCMPointer: number;
  inPCMLength: number;
  outOpusPointer: number;
  handler: { _encode(pcm: number, bytes: number, out: number, frameSize: number): number };
}

export interface OpusFrameEncoderOptions {
  /** Bits per second (default 32,000). */
  bitrate?: number;
  /** 0–10; libopus' default (9 in this build) when absent. */
  complexity?: number;
  /** `audio` (default) or `voip` (libopus' speech tuning). */
  application?: "audio" | "voip";
}

export class OpusFrameEncoder {
  readonly sampleRate: number;
  readonly #opus: OpusScript;
  #closed = false;

  constructor(sampleRate: 8000 | 12000 | 16000 | 24000 | 48000, opts: OpusFrameEncoderOptions = {}) {
    this.sampleRate = sampleRate;
    this.#opus = new OpusScript(
      sampleRate,
      1,
      opts.application === "voip" ? OpusScript.Application.VOIP : OpusScript.Application.AUDIO,
    );
    try {
      // If opusscript's heap cannot grow any more its allocations come back as null pointers: refuse here,
      // not mid-stream.
      const o = this.#opus as unknown as OpusInternals;
      opusHeap = o.outPCM.buffer as ArrayBuffer;
      if (!o.inPCMPointer || !o.outOpusPointer || o.inPCMLength < (sampleRate / 50) * 4) {
        throw new EncoderCapacityError("opus: too many Opus encoders open in this process; retry shortly");
      }
      this.#opus.encoderCTL(OPUS_SET_BITRATE_REQUEST, opts.bitrate ?? 32000);
      if (opts.complexity !== undefined) {
        this.#opus.encoderCTL(
          OPUS_SET_COMPLEXITY_REQUEST,
          Math.max(0, Math.min(10, Math.round(opts.complexity))),
        );
      }
    } catch (e) {
      this.#opus.delete();
      throw e;
    }
  }

  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Encode one frame (2.5–60 ms at the encoder's rate) into one Opus packet (a fresh copy).
   *
   * opusscript's encode() stages the input through `HEAPU16.subarray(bytePointer)`, i.e. at twice the address
   * it allocated, where it overwrites other live encoders' buffers and the allocator's chunk headers once a few
   * encoders are open (heap corruption, then failures after free). The same call is made here with the input
   * staged at the buffer opusscript really allocated, in the layout its native side reads (one byte of the
   * little-endian frame per 16-bit slot, length in bytes), through `opusHeap` (see there).
   */
  encode(frame: Int16Array): Uint8Array {
    if (this.#closed) throw new Error("opus encoder is closed");
    const o = this.#opus as unknown as OpusInternals;
    const bytes = new Uint8Array(frame.buffer, frame.byteOffset, frame.byteLength);
    new Uint16Array(opusHeap!, o.inPCMPointer, bytes.length).set(bytes);
    const len = o.handler._encode(o.inPCMPointer, bytes.length, o.outOpusPointer, frame.length);
    if (len < 0) throw new Error(`opus_encode failed (${len})`);
    return new Uint8Array(opusHeap!, o.outOpusPointer, len).slice();
  }

  /** Free the WASM encoder state. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#opus.delete();
  }
}
