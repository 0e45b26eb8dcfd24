/**
 * The worker side of noise suppression: one RNNoise state (./rnnoise.ts NoiseSuppressor) per stream, kept
 * across jobs, created on a stream's first frames and freed when the main side reports the stream closed (or
 * when the worker closes). A restarted worker starts every stream with a fresh state.
 */
import { NoiseSuppressor, RNNOISE_FRAME } from "./rnnoise.ts";

/** One batch: frames (n × 480 samples of 48 kHz Int16, concatenated) per stream, plus streams now closed. */
export interface DenoiseJob {
  items: Array<{ stream: number; frames: Int16Array }>;
  closed: number[];
}

export interface DenoiseResult {
  /** Per item, its frames denoised (same length). */
  frames: Int16Array[];
  /** States alive in the worker after the job (leak tests, metrics). */
  open: number;
}

export class DenoiseStates {
  private readonly states = new Map<number, NoiseSuppressor>();

  get open(): number {
    return this.states.size;
  }

  async run(job: DenoiseJob): Promise<DenoiseResult> {
    for (const id of job.closed) this.free(id);
    const frames: Int16Array[] = [];
    for (const item of job.items) {
      if (item.frames.length % RNNOISE_FRAME !== 0) {
        throw new RangeError(`denoise: ${item.frames.length} samples is not a whole number of 10 ms frames`);
      }
      let s = this.states.get(item.stream);
      if (!s) {
        s = await NoiseSuppressor.create();
        this.states.set(item.stream, s);
      }
      const out = new Int16Array(item.frames.length);
      for (let i = 0; i < item.frames.length; i += RNNOISE_FRAME) {
        out.set(s.process(item.frames.subarray(i, i + RNNOISE_FRAME)), i);
      }
      frames.push(out);
    }
    return { frames, open: this.states.size };
  }

  private free(id: number): void {
    this.states.get(id)?.close();
    this.states.delete(id);
  }

  /** Frees every state. Idempotent. */
  closeAll(): void {
    for (const id of [...this.states.keys()]) this.free(id);
  }
}
