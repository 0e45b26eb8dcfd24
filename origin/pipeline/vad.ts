/**
 * The main-isolate side of voice activity detection: each stream's Silero state (kept here, outside the model,
 * so one model run can evaluate chunks of many streams and the state survives a worker restart) and the
 * batching of all sessions' chunks into one request to the VAD worker. The model itself runs in that worker
 * (./silero_vad.ts); this file never loads onnxruntime.
 * Input: 512 samples of 16 kHz audio per chunk (32 ms). Output: speech probability.
 */

import { StreamBatcher } from "../../lib/stream_batcher.ts";

export const VAD_CHUNK_SAMPLES = 512;
export const VAD_CONTEXT_SAMPLES = 64;
export const VAD_STATE_SIZE = 2 * 128;

/** Per-stream recurrent state (owned by the caller). */
export interface VadStreamState {
  state: Float32Array; // 256
  context: Float32Array; // 64
}

export function newVadState(): VadStreamState {
  return { state: new Float32Array(VAD_STATE_SIZE), context: new Float32Array(VAD_CONTEXT_SAMPLES) };
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
 * (`run`: a SileroVad in-process, or a worker job), through lib/stream_batcher.ts.
 */
export class BatchingVad implements VadBackend {
  private readonly batcher: StreamBatcher<VadStreamState, Pending>;
  constructor(
    private readonly run: (items: VadSeqItem[]) => Promise<VadSeqResult>,
    maxBatch = 128,
  ) {
    this.batcher = new StreamBatcher((batch) => this.runBatch(batch), maxBatch);
  }

  evaluate(stream: VadStreamState, chunk: Float32Array): Promise<number> {
    return this.evaluateMany(stream, [chunk]).then((p) => p[0]);
  }

  evaluateMany(stream: VadStreamState, chunks: Float32Array[]): Promise<Float32Array> {
    if (!chunks.length) return Promise.resolve(new Float32Array(0));
    return new Promise((resolve, reject) => this.batcher.push({ stream, chunks, resolve, reject }));
  }

  /** Requests waiting for the model. */
  get queued(): number {
    return this.batcher.queued;
  }

  private async runBatch(batch: Pending[]): Promise<boolean> {
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
    return true;
  }
}
