/**
 * Speech rate change without a pitch change (the `speed` of POST /v1/audio/speech), streaming: Sonic
 * (`@echogarden/sonic-wasm`, the time-stretcher espeak and Android's TTS use, compiled to WASM). One WASM
 * instance per stretcher, freed by `close()`; input and output are mono PCM16.
 */
import Sonic from "@echogarden/sonic-wasm";
import { registry } from "../metrics.ts";

interface SonicModule {
  HEAP16: Int16Array;
  _malloc(bytes: number): number;
  _free(ptr: number): void;
  _sonicCreateStream(sampleRate: number, channels: number): number;
  _sonicDestroyStream(stream: number): void;
  _sonicSetSpeed(stream: number, speed: number): void;
  _sonicWriteShortToStream(stream: number, ptr: number, samples: number): number;
  _sonicReadShortFromStream(stream: number, ptr: number, max: number): number;
  _sonicSamplesAvailable(stream: number): number;
  _sonicFlushStream(stream: number): number;
}

const mOpen = registry.gauge("parley_time_stretchers_open", "Sonic time-stretch instances alive");

export class TimeStretcher {
  #m: SonicModule | null;
  #stream: number;

  private constructor(m: SonicModule, sampleRate: number, speed: number) {
    this.#m = m;
    this.#stream = m._sonicCreateStream(sampleRate, 1);
    m._sonicSetSpeed(this.#stream, speed);
    mOpen.inc();
  }

  static async create(sampleRate: number, speed: number): Promise<TimeStretcher> {
    if (!(speed > 0) || !Number.isFinite(speed)) throw new RangeError(`bad speed ${speed}`);
    return new TimeStretcher(await (Sonic as unknown as () => Promise<SonicModule>)(), sampleRate, speed);
  }

  /** Feed samples; returns the stretched samples ready so far. */
  write(pcm: Int16Array): Int16Array {
    const m = this.#live();
    if (pcm.length) {
      const p = m._malloc(pcm.length * 2);
      try {
        m.HEAP16.set(pcm, p >> 1);
        m._sonicWriteShortToStream(this.#stream, p, pcm.length);
      } finally {
        m._free(p);
      }
    }
    return this.#read();
  }

  /** The rest of the stretched audio; the stretcher is freed. */
  end(): Int16Array {
    const m = this.#live();
    m._sonicFlushStream(this.#stream);
    const out = this.#read();
    this.close();
    return out;
  }

  /** Idempotent. */
  close(): void {
    if (!this.#m) return;
    this.#m._sonicDestroyStream(this.#stream);
    this.#m = null;
    mOpen.dec();
  }

  #live(): SonicModule {
    if (!this.#m) throw new Error("time stretcher closed");
    return this.#m;
  }

  #read(): Int16Array {
    const m = this.#live();
    const n = m._sonicSamplesAvailable(this.#stream);
    if (n <= 0) return new Int16Array(0);
    const p = m._malloc(n * 2);
    try {
      const got = m._sonicReadShortFromStream(this.#stream, p, n);
      return m.HEAP16.slice(p >> 1, (p >> 1) + Math.max(0, got));
    } finally {
      m._free(p);
    }
  }
}
