/**
 * Silero VAD v5 (ONNX model shipped in npm:@ricky0123/vad-web) on onnxruntime-node.
 *
 * The model is stateful (an LSTM state [2, B, 128] plus a 64-sample context of the previous chunk); we keep that
 * state OUTSIDE the ONNX session, per stream, so that one session can evaluate chunks of many streams in one
 * batched run (`runBatch`) and so the state survives a worker restart on the caller's side.
 * Input: 512 samples of 16 kHz audio per chunk (32 ms). Output: speech probability.
 */
import * as ort from "onnxruntime-node";
import { fileURLToPath } from "node:url";

export const VAD_CHUNK_SAMPLES = 512;
export const VAD_CONTEXT_SAMPLES = 64;
export const VAD_STATE_SIZE = 2 * 128;

export function defaultSileroModelPath(): string {
  return fileURLToPath(
    new URL("../../node_modules/@ricky0123/vad-web/dist/silero_vad_v5.onnx", import.meta.url),
  );
}

/** Per-stream recurrent state (owned by the caller). */
export interface VadStreamState {
  state: Float32Array; // 256
  context: Float32Array; // 64
}

export function newVadState(): VadStreamState {
  return { state: new Float32Array(VAD_STATE_SIZE), context: new Float32Array(VAD_CONTEXT_SAMPLES) };
}

export interface VadBatchItem {
  chunk: Float32Array; // 512 samples
  state: Float32Array; // 256
  context: Float32Array; // 64
}

export interface VadBatchResult {
  probs: Float32Array;
  /** New states, item i at [i*256, (i+1)*256). */
  states: Float32Array;
}

export class SileroVad {
  private constructor(private session: ort.InferenceSession | null) {}

  static async load(modelPath = defaultSileroModelPath(), intraOpNumThreads = 1): Promise<SileroVad> {
    const session = await ort.InferenceSession.create(modelPath, {
      intraOpNumThreads,
      interOpNumThreads: 1,
      executionMode: "sequential",
      graphOptimizationLevel: "all",
    });
    return new SileroVad(session);
  }

  /** Evaluate one chunk for each of several streams in one run (batch dimension = streams). */
  async runBatch(items: VadBatchItem[]): Promise<VadBatchResult> {
    if (!this.session) throw new Error("VAD is closed");
    const B = items.length;
    const width = VAD_CONTEXT_SAMPLES + VAD_CHUNK_SAMPLES;
    const input = new Float32Array(B * width);
    // state layout [2, B, 128]
    const state = new Float32Array(2 * B * 128);
    for (let b = 0; b < B; b++) {
      const it = items[b];
      if (it.chunk.length !== VAD_CHUNK_SAMPLES) {
        throw new RangeError(`VAD chunk must be ${VAD_CHUNK_SAMPLES}`);
      }
      input.set(it.context, b * width);
      input.set(it.chunk, b * width + VAD_CONTEXT_SAMPLES);
      state.set(it.state.subarray(0, 128), b * 128);
      state.set(it.state.subarray(128, 256), (B + b) * 128);
    }
    const out = await this.session.run({
      input: new ort.Tensor("float32", input, [B, width]),
      state: new ort.Tensor("float32", state, [2, B, 128]),
      sr: new ort.Tensor("int64", BigInt64Array.from([16000n]), []),
    });
    const probs = Float32Array.from(out.output.data as Float32Array);
    const sN = out.stateN.data as Float32Array;
    const states = new Float32Array(B * 256);
    for (let b = 0; b < B; b++) {
      states.set(sN.subarray(b * 128, (b + 1) * 128), b * 256);
      states.set(sN.subarray((B + b) * 128, (B + b + 1) * 128), b * 256 + 128);
    }
    return { probs, states };
  }

  async close(): Promise<void> {
    const s = this.session;
    this.session = null;
    if (s) await s.release();
  }
}

/** Where a pipeline sends its VAD chunks: inline (tests) or batched through a worker (production). */
export interface VadBackend {
  /** Evaluate one chunk of one stream; the stream's state is updated in place. */
  evaluate(stream: VadStreamState, chunk: Float32Array): Promise<number>;
}

/**
 * Batches `evaluate` calls from many streams that arrive in the same turn of the event loop into one model run.
 * `run` is the batched model call (a SileroVad in-process, or a worker job).
 */
export class BatchingVad implements VadBackend {
  private pending: Array<
    {
      stream: VadStreamState;
      chunk: Float32Array;
      resolve: (p: number) => void;
      reject: (e: unknown) => void;
    }
  > = [];
  private scheduled = false;
  private running = false;
  constructor(
    private readonly run: (items: VadBatchItem[]) => Promise<VadBatchResult>,
    private readonly maxBatch = 64,
  ) {}

  evaluate(stream: VadStreamState, chunk: Float32Array): Promise<number> {
    return new Promise((resolve, reject) => {
      this.pending.push({ stream, chunk, resolve, reject });
      this.schedule();
    });
  }

  get queued(): number {
    return this.pending.length;
  }

  private schedule(): void {
    if (this.scheduled || this.running) return;
    this.scheduled = true;
    queueMicrotask(() => {
      this.scheduled = false;
      void this.drain();
    });
  }

  private async drain(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      while (this.pending.length) {
        // At most one chunk per stream per batch (their states chain).
        const seen = new Set<VadStreamState>();
        const batch: typeof this.pending = [];
        const rest: typeof this.pending = [];
        for (const p of this.pending) {
          if (batch.length < this.maxBatch && !seen.has(p.stream)) {
            seen.add(p.stream);
            batch.push(p);
          } else rest.push(p);
        }
        this.pending = rest;
        try {
          const r = await this.run(
            batch.map((b) => ({ chunk: b.chunk, state: b.stream.state, context: b.stream.context })),
          );
          batch.forEach((b, i) => {
            b.stream.state.set(r.states.subarray(i * 256, (i + 1) * 256));
            b.stream.context.set(b.chunk.subarray(VAD_CHUNK_SAMPLES - VAD_CONTEXT_SAMPLES));
            b.resolve(r.probs[i]);
          });
        } catch (e) {
          for (const b of batch) b.reject(e);
        }
      }
    } finally {
      this.running = false;
    }
  }
}
