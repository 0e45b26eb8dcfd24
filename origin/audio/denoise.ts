/**
 * The main-isolate side of noise suppression (the `noise_suppression` session option): inbound 48 kHz frames
 * of every stream that wants it are batched into one job for the denoise worker (RNNoise, ./denoise_states.ts),
 * through the same batcher as the VAD (lib/stream_batcher.ts): N sessions cost one round trip per tick, not
 * N. RNNoise's state lives in the worker (its DenoiseState is native WASM memory that cannot move between
 * isolates); the main side only holds stream ids.
 *
 * A dedicated worker rather than the VAD worker: every session's segmentation waits on the VAD worker, and
 * RNNoise per session costs several times Silero's batched per-chunk share (bench/noise_suppression.ts), so
 * sharing the thread would delay the VAD of sessions that do not use suppression.
 */
import type { DenoiseJob, DenoiseResult } from "./denoise_states.ts";
import { registry } from "../../lib/metrics.ts";
import { StreamBatcher } from "../../lib/stream_batcher.ts";

/** One stream's suppression: frames in order, results in the same order; `close()` frees its worker state. */
export interface FrameDenoiser {
  process(frames: Int16Array[]): Promise<Int16Array[]>;
  close(): void;
}

interface Pending {
  stream: number;
  frames: Int16Array[];
  resolve: (f: Int16Array[]) => void;
  reject: (e: unknown) => void;
}

const mBatch = registry.histogram(
  "parley_denoise_batch_seconds",
  "Round trip of one noise-suppression batch (all streams of a tick) to the denoise worker",
  [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5],
);
const mStreams = registry.gauge("parley_denoise_streams_open", "Noise-suppression streams not yet closed");
const mWorkerStates = registry.gauge(
  "parley_denoise_worker_states",
  "RNNoise states alive in the denoise worker (after its last batch)",
);

export class BatchingDenoiser {
  private closedStreams: number[] = [];
  private readonly batcher: StreamBatcher<number, Pending>;
  private nextId = 1;
  private streams = 0;
  /** RNNoise states the worker reported after its last batch. */
  workerStates = 0;

  constructor(
    private readonly run: (job: DenoiseJob) => Promise<DenoiseResult>,
    maxBatch = 256,
  ) {
    this.batcher = new StreamBatcher(
      (batch) => this.runBatch(batch),
      maxBatch,
      () => this.closedStreams.length > 0,
    );
  }

  /** Streams opened and not closed. */
  get openStreams(): number {
    return this.streams;
  }

  open(): FrameDenoiser {
    const id = this.nextId++;
    let closed = false;
    // The worker holds a state only for streams that sent frames: closing an unused one costs nothing (and
    // must not start the denoise worker).
    let used = false;
    this.streams++;
    mStreams.inc();
    return {
      process: (frames) => {
        if (closed) return Promise.reject(new Error("denoiser stream is closed"));
        if (!frames.length) return Promise.resolve([]);
        used = true;
        return new Promise((resolve, reject) => this.batcher.push({ stream: id, frames, resolve, reject }));
      },
      close: () => {
        if (closed) return;
        closed = true;
        this.streams--;
        mStreams.dec();
        if (!used) return;
        this.closedStreams.push(id);
        this.batcher.kick();
      },
    };
  }

  /** Waits until nothing is queued or running (tests). */
  async idle(): Promise<void> {
    while (this.batcher.busy) await new Promise((r) => setTimeout(r, 2));
  }

  private async runBatch(batch: Pending[]): Promise<boolean> {
    // a stream closed after its last request is freed only once that request has run
    const inBatch = new Set(batch.map((b) => b.stream));
    const closed = this.closedStreams.filter((id) => !inBatch.has(id));
    this.closedStreams = this.closedStreams.filter((id) => inBatch.has(id));
    const t0 = performance.now();
    try {
      const items = batch.map((b) => {
        const all = new Int16Array(b.frames.reduce((n, f) => n + f.length, 0));
        let o = 0;
        for (const f of b.frames) {
          all.set(f, o);
          o += f.length;
        }
        return { stream: b.stream, frames: all };
      });
      const r = await this.run({ items, closed });
      mBatch.observe((performance.now() - t0) / 1000);
      this.workerStates = r.open;
      mWorkerStates.set(r.open);
      batch.forEach((b, i) => {
        const out: Int16Array[] = [];
        let o = 0;
        for (const f of b.frames) {
          out.push(r.frames[i].subarray(o, o + f.length));
          o += f.length;
        }
        b.resolve(out);
      });
      return true;
    } catch (e) {
      // closed ids are resent with the next batch so their states are still freed
      this.closedStreams.push(...closed);
      for (const b of batch) b.reject(e);
      return batch.length > 0;
    }
  }
}
