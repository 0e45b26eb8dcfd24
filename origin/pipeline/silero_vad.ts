/**
 * Silero VAD v5 (ONNX model shipped in npm:@ricky0123/vad-web) on onnxruntime-node: the inference-worker side
 * of voice activity detection (the main-isolate side, per-stream state and batching, is ./vad.ts).
 *
 * The model is stateful (an LSTM state [2, B, 128] plus a 64-sample context of the previous chunk); the state is
 * passed in and returned with every run, so one batched run (`runBatch`) serves chunks of many streams.
 */
import * as ort from "onnxruntime-node";
import { fileURLToPath } from "node:url";
import { ClosedError } from "../../lib/closed_error.ts";
import { VAD_CHUNK_SAMPLES, VAD_CONTEXT_SAMPLES, type VadSeqItem, type VadSeqResult } from "./vad.ts";

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

export function defaultSileroModelPath(): string {
  return fileURLToPath(
    new URL("../../node_modules/@ricky0123/vad-web/dist/silero_vad_v5.onnx", import.meta.url),
  );
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
    if (!this.session) throw new ClosedError("VAD");
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
