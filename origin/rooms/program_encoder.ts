/**
 * One program of a `shared` room (what every listener hearing one source hears), encoded once: the room's
 * controller pushes the program's 10 ms frames while any listener plays it, and every second frame this
 * returns one 20 ms Opus packet that is forwarded unchanged to each of those listeners
 * (origin/rooms/forward_listener.ts). The encoder's cost is paid per program, not per listener.
 *
 * `close()` frees the WASM encoder (idempotent).
 */
import { Buffer } from "node:buffer";
import { OpusFrameEncoder } from "../../lib/audio/opus_frames.ts";
import { registry } from "../../lib/metrics.ts";
import { FRAME_SAMPLES } from "../session/outbound_audio.ts";
import type { ProgramSource } from "./room_types.ts";

/** Frames per packet: 20 ms packets, the default of every WebRTC Opus receiver. */
export const PACKET_FRAMES = 2;
export const PACKET_SAMPLES = PACKET_FRAMES * FRAME_SAMPLES;

/**
 * Fullband at 48 kbit/s: above what libwebrtc sends by default (~32), since one encoder now serves every
 * listener and its CPU no longer scales with them.
 */
export const PROGRAM_BITRATE = 48_000;

const encodeSeconds = registry.histogram(
  "parley_room_program_encode_seconds",
  "Time to encode one 20 ms packet of a shared room's program (once for all its listeners)",
  [0.0001, 0.0002, 0.0005, 0.001, 0.002, 0.005],
);
const openPrograms = registry.gauge(
  "parley_room_program_encoders_open",
  "Shared-room program encoders not yet closed",
);

export class ProgramEncoder {
  readonly program: ProgramSource;
  readonly #opus: OpusFrameEncoder;
  readonly #pcm = new Int16Array(PACKET_SAMPLES);
  #filled = 0;
  #closed = false;
  /** Packets produced so far. */
  packets = 0;

  constructor(program: ProgramSource) {
    this.program = program;
    this.#opus = new OpusFrameEncoder(48_000, { bitrate: PROGRAM_BITRATE });
    openPrograms.inc();
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Take one 10 ms frame; returns a packet when it completes one, else null. */
  /** The packet is a Buffer (made once here, not per listener: werift sends Buffers). */
  push(frame: Int16Array): Buffer | null {
    if (this.#closed) return null;
    this.#pcm.set(frame, this.#filled * FRAME_SAMPLES);
    if (++this.#filled < PACKET_FRAMES) return null;
    this.#filled = 0;
    const t0 = performance.now();
    const bytes = this.#opus.encode(this.#pcm);
    const packet = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
    encodeSeconds.observe((performance.now() - t0) / 1000);
    this.packets++;
    return packet;
  }

  /** Drop a half-filled packet (the program was not heard for a while; the next packet starts afresh). */
  resetPacket(): void {
    this.#filled = 0;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#opus.close();
    openPrograms.dec();
  }
}
