/**
 * Chunk synthesis for the job worker, off the event loop: a dedicated inference pool (origin/inference's
 * InferencePool and engines, loaded with the synthesis engine only), `TTS_WORKERS` isolates. Output is PCM16 at the job's
 * sample rate (the worker resamples when the engine's rate differs).
 */
import { InferencePool } from "../inference/pool.ts";
import { DEFAULT_TTS_CONFIG, type TtsConfig, type TtsEngineName } from "../tts/engine.ts";

export interface SynthesizedChunk {
  /** PCM16 little-endian mono. */
  pcm: Uint8Array;
  sampleRate: number;
  audioMs: number;
}

export interface ChunkSynthesizer {
  synthesize(text: string, voice: string, engine: string, sampleRate: number): Promise<SynthesizedChunk>;
  ready(): boolean;
  close(): Promise<void>;
}

function toPcm16(samples: Int16Array | Float32Array): Int16Array {
  if (samples instanceof Int16Array) return samples;
  const out = new Int16Array(samples.length);
  for (let i = 0; i < samples.length; i++) {
    const v = Math.max(-1, Math.min(1, samples[i]));
    out[i] = v < 0 ? v * 0x8000 : v * 0x7fff;
  }
  return out;
}

export class PoolSynthesizer implements ChunkSynthesizer {
  private constructor(private readonly pool: InferencePool) {}

  static async create(
    opts: { workers: number; tts?: Partial<TtsConfig>; name?: string },
  ): Promise<PoolSynthesizer> {
    const pool = await InferencePool.create({
      name: opts.name ?? "tts_jobs",
      size: Math.max(1, opts.workers),
      init: { tts: { ...DEFAULT_TTS_CONFIG, ...opts.tts } },
      initTimeoutMs: 120_000,
      jobTimeoutMs: 60_000,
    });
    return new PoolSynthesizer(pool);
  }

  async synthesize(
    text: string,
    voice: string,
    engine: string,
    sampleRate: number,
  ): Promise<SynthesizedChunk> {
    const r = await this.pool.submit({
      kind: "tts",
      text,
      voice: engine === "vits" ? undefined : voice,
      engine: engine as TtsEngineName,
      outRate: sampleRate,
    }, { priority: "normal", retry: true });
    const pcm = toPcm16(r.pcm);
    return {
      pcm: new Uint8Array(pcm.buffer, pcm.byteOffset, pcm.byteLength),
      sampleRate: r.sampleRate,
      audioMs: (pcm.length * 1000) / r.sampleRate,
    };
  }

  ready(): boolean {
    return this.pool.healthy;
  }

  close(): Promise<void> {
    return this.pool.close();
  }
}
