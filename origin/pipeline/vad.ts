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

/** One stream's consecutive chunks (n × 512 samples, concatenated) with its state before the first. */
export interface VadSeqItem {
  chunks: Float32Array;
  state: Float32Array; // 256
  context: Float32Array; // 64
}

export interface VadSeqResult {
  /** Per item, one probability per chunk. */
  probs: Float32Array[];
  /** Per item, the state and context after its last chunk. */
  states: Float32Array[];
  contexts: Float32Array[];
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

  /**
   * Several consecutive chunks per stream (a stream that fell behind catches up in one call): step t evaluates
   * the t-th chunk of every stream that has one, batched. States/contexts are chained inside.
   */
  async runSequences(items: VadSeqItem[]): Promise<VadSeqResult> {
    const n = items.map((it) => Math.floor(it.chunks.length / VAD_CHUNK_SAMPLES));
    const T = Math.max(0, ...n);
    const states = items.map((it) => it.state.slice());
    const contexts = items.map((it) => it.context.slice());
    const probs = items.map((_, b) => new Float32Array(n[b]));
    for (let t = 0; t < T; t++) {
      const active = items.map((_, b) => b).filter((b) => n[b] > t);
      const chunks = active.map((b) =>
        items[b].chunks.subarray(t * VAD_CHUNK_SAMPLES, (t + 1) * VAD_CHUNK_SAMPLES)
      );
      const r = await this.runBatch(
        active.map((b, k) => ({ chunk: chunks[k], state: states[b], context: contexts[b] })),
      );
      active.forEach((b, k) => {
        probs[b][t] = r.probs[k];
        states[b] = r.states.slice(k * 256, (k + 1) * 256);
        contexts[b] = chunks[k].slice(VAD_CHUNK_SAMPLES - VAD_CONTEXT_SAMPLES);
      });
    }
    return { probs, states, contexts };
  }

  async close(): Promise<void> {
    const s = this.session;
    this.session = null;
    if (s) await s.release();
  }
}

/** Where a pipeline sends its VAD chunks: inline (tests) or batched through a worker (production). */
export interface VadBackend {
  /** Evaluate consecutive chunks of one stream; the stream's state is updated in place. */
  evaluateMany(stream: VadStreamState, chunks: Float32Array[]): Promise<Float32Array>;
}

interface Pending {
  stream: VadStreamState;
  chunks: Float32Array[];
  resolve: (p: Float32Array) => void;
  reject: (e: unknown) => void;
}

/**
 * Batches the requests of many streams that arrive while the previous run is in flight into one model call
 * (`run`: a SileroVad in-process, or a worker job). A stream that fell behind sends all its pending chunks at
 * once and catches up in a single round trip.
 */
export class BatchingVad implements VadBackend {
  private pending: Pending[] = [];
  private scheduled = false;
  private running = false;
  constructor(
    private readonly run: (items: VadSeqItem[]) => Promise<VadSeqResult>,
    private readonly maxBatch = 128,
  ) {}

  evaluate(stream: VadStreamState, chunk: Float32Array): Promise<number> {
    return this.evaluateMany(stream, [chunk]).then((p) => p[0]);
  }

  evaluateMany(stream: VadStreamState, chunks: Float32Array[]): Promise<Float32Array> {
    if (!chunks.length) return Promise.resolve(new Float32Array(0));
    return new Promise((resolve, reject) => {
      this.pending.push({ stream, chunks, resolve, reject });
      this.schedule();
    });
  }

  /** Requests waiting for the model. */
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
        // One request per stream per batch (their states chain).
        const seen = new Set<VadStreamState>();
        const batch: Pending[] = [];
        const rest: Pending[] = [];
        for (const p of this.pending) {
          if (batch.length < this.maxBatch && !seen.has(p.stream)) {
            seen.add(p.stream);
            batch.push(p);
          } else rest.push(p);
        }
        this.pending = rest;
        try {
          const items = batch.map((b) => {
            const all = new Float32Array(b.chunks.length * VAD_CHUNK_SAMPLES);
            b.chunks.forEach((c, i) => all.set(c, i * VAD_CHUNK_SAMPLES));
            return { chunks: all, state: b.stream.state, context: b.stream.context };
          });
          const r = await this.run(items);
          batch.forEach((b, i) => {
            b.stream.state.set(r.states[i]);
            b.stream.context.set(r.contexts[i]);
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
