/**
 * RNNoise noise suppression (@echogarden/rnnoise-wasm, model built in) for the inbound WebRTC format: 48 kHz
 * mono, 480-sample (10 ms) frames. One WASM module per isolate (a process or a worker), loaded on first use;
 * each stream owns a `NoiseSuppressor` with its own native DenoiseState, freed by `close()`.
 *
 * RNNoise works on float samples in the int16 range; frames go through one scratch buffer per stream in the
 * module heap, so `process()` allocates nothing native.
 */
import RNNoise from "@echogarden/rnnoise-wasm";
import { registry } from "../../lib/metrics.ts";

export const RNNOISE_RATE = 48000;
export const RNNOISE_FRAME = 480;

interface RnnoiseModule {
  _rnnoise_create(model: number): number;
  _rnnoise_destroy(state: number): void;
  _rnnoise_process_frame(state: number, out: number, input: number): number;
  _rnnoise_get_frame_size(): number;
  _malloc(bytes: number): number;
  _free(ptr: number): void;
  HEAPF32: Float32Array;
}

const openStates = registry.gauge("parley_rnnoise_states_open", "RNNoise per-stream states not yet closed");
const framesTotal = registry.counter("parley_rnnoise_frames_total", "10 ms frames through RNNoise");

let modulePromise: Promise<RnnoiseModule> | null = null;

/** The isolate's RNNoise module (instantiated once). */
export function loadRnnoise(): Promise<RnnoiseModule> {
  modulePromise ??= (RNNoise as unknown as () => Promise<RnnoiseModule>)().then((m) => {
    const size = m._rnnoise_get_frame_size();
    if (size !== RNNOISE_FRAME) throw new Error(`RNNoise frame size is ${size}, expected ${RNNOISE_FRAME}`);
    return m;
  });
  return modulePromise;
}

export class NoiseSuppressor {
  private state: number;
  private buf: number;
  private closed = false;
  /** RNNoise's voice-activity probability for the last frame (0–1). */
  lastVadProbability = 0;

  private constructor(private readonly m: RnnoiseModule) {
    this.state = m._rnnoise_create(0);
    if (!this.state) throw new Error("rnnoise_create failed");
    this.buf = m._malloc(RNNOISE_FRAME * 4);
    if (!this.buf) {
      m._rnnoise_destroy(this.state);
      throw new Error("RNNoise: out of WASM memory");
    }
    openStates.inc();
  }

  static async create(): Promise<NoiseSuppressor> {
    return new NoiseSuppressor(await loadRnnoise());
  }

  /** Denoise one 480-sample frame; returns a new array of the same type (Int16, or float in [-1, 1]). */
  process<T extends Int16Array | Float32Array>(frame: T): T {
    if (this.closed) throw new Error("NoiseSuppressor is closed");
    if (frame.length !== RNNOISE_FRAME) {
      throw new RangeError(`RNNoise takes ${RNNOISE_FRAME}-sample frames at 48 kHz, got ${frame.length}`);
    }
    const isInt = frame instanceof Int16Array;
    const scale = isInt ? 1 : 32768;
    // The heap view is re-read on every call: WASM memory growth detaches old views.
    const base = this.buf >> 2;
    let heap = this.m.HEAPF32;
    for (let i = 0; i < RNNOISE_FRAME; i++) heap[base + i] = frame[i] * scale;
    this.lastVadProbability = this.m._rnnoise_process_frame(this.state, this.buf, this.buf);
    heap = this.m.HEAPF32;
    framesTotal.inc();
    if (isInt) {
      const out = new Int16Array(RNNOISE_FRAME);
      for (let i = 0; i < RNNOISE_FRAME; i++) {
        const v = Math.round(heap[base + i]);
        out[i] = v > 32767 ? 32767 : v < -32768 ? -32768 : v;
      }
      return out as T;
    }
    const out = new Float32Array(RNNOISE_FRAME);
    for (let i = 0; i < RNNOISE_FRAME; i++) out[i] = Math.max(-1, Math.min(1, heap[base + i] / 32768));
    return out as T;
  }

  /** Free the native state (rnnoise_destroy) and scratch buffer; idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.m._rnnoise_destroy(this.state);
    this.m._free(this.buf);
    this.state = 0;
    this.buf = 0;
    openStates.dec();
  }
}
