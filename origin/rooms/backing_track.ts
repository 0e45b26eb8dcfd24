/**
 * A backing track played as a frame source: 48 kHz mono Int16 PCM, looped without a gap. Each `next()` returns
 * the following 10 ms frame; a frame that crosses the end of the track takes its remaining samples from the
 * start, so the loop seam is sample-exact (no silence, no repeated sample). The PCM comes decoded from the
 * caller (the track store's WAV parser); this class never parses files.
 *
 * The cursor only advances when a frame is taken: the room pulls the track only on ticks where some listener
 * hears it, so the track pauses while nobody does and resumes where it stopped.
 */
import { FRAME_SAMPLES, SAMPLE_RATE } from "../session/outbound_audio.ts";

export class BackingTrack {
  readonly id: string;
  readonly durationMs: number;
  #pcm: Int16Array;
  #pos = 0;
  #loops = 0;
  #closed = false;
  readonly #frame = new Int16Array(FRAME_SAMPLES);

  /** `pcm`: 48 kHz mono samples (at least one frame). The array is shared, not copied (tracks are large). */
  constructor(id: string, pcm: Int16Array, sampleRate = SAMPLE_RATE) {
    if (sampleRate !== SAMPLE_RATE) {
      throw new RangeError(`backing track ${id}: sample rate ${sampleRate} Hz, expected ${SAMPLE_RATE} Hz`);
    }
    if (pcm.length < FRAME_SAMPLES) {
      throw new RangeError(`backing track ${id}: ${pcm.length} samples, at least ${FRAME_SAMPLES} needed`);
    }
    this.id = id;
    this.#pcm = pcm;
    this.durationMs = pcm.length / (SAMPLE_RATE / 1000);
  }

  /** Sample position of the next frame. */
  get position(): number {
    return this.#pos;
  }

  /** Completed passes through the track. */
  get loops(): number {
    return this.#loops;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** The next 10 ms frame (a reused buffer, valid until the next call). Silence once closed. */
  next(): Int16Array {
    const out = this.#frame;
    if (this.#closed) return out.fill(0);
    const pcm = this.#pcm;
    let filled = 0;
    while (filled < FRAME_SAMPLES) {
      const n = Math.min(FRAME_SAMPLES - filled, pcm.length - this.#pos);
      out.set(pcm.subarray(this.#pos, this.#pos + n), filled);
      filled += n;
      this.#pos += n;
      if (this.#pos >= pcm.length) {
        this.#pos = 0;
        this.#loops++;
      }
    }
    return out;
  }

  /** Back to the first sample. */
  rewind(): void {
    this.#pos = 0;
  }

  /** Drop the PCM reference. Idempotent. */
  close(): void {
    this.#closed = true;
    this.#pcm = new Int16Array(0);
    this.#frame.fill(0);
  }
}
