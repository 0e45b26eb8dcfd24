/**
 * Chunk synthesis for the job worker, off the event loop: a dedicated inference pool (origin/inference's
 * InferencePool and engines, loaded with the synthesis engine only), `TTS_WORKERS` isolates. Output is PCM16 at the job's
 * sample rate (the worker resamples when the engine's rate differs).
 */
import { InferencePool } from "../inference/pool.ts";
import type { TtsConfig } from "../tts/engine.ts";
import type { TtsEngineName } from "../../protocol/engines.ts";
import { asInt16 } from "../../lib/audio/resampler.ts";
import { parseSsml } from "../../protocol/ssml.ts";

/** Silence kept before the first and after the last word (origin/tts/trim_edges.ts); unset = as synthesized. */
export interface ChunkTrim {
  headMs?: number;
  tailMs?: number;
}

export interface SynthesizedChunk {
  /** PCM16 little-endian mono. */
  pcm: Uint8Array;
  sampleRate: number;
  audioMs: number;
}

export interface ChunkSynthesizer {
  /** `opts.ssml`: `text` is a chunk of regenerated safe SSML (protocol/ssml.ts ssmlJobChunks). */
  synthesize(
    text: string,
    voice: string,
    engine: string,
    sampleRate: number,
    opts?: { speed?: number; ssml?: boolean; trim?: ChunkTrim },
  ): Promise<SynthesizedChunk>;
  ready(): boolean;
  close(): Promise<void>;
}

export class PoolSynthesizer implements ChunkSynthesizer {
  private constructor(private readonly pool: InferencePool) {}

  static async create(
    opts: { workers: number; tts: TtsConfig; name?: string },
  ): Promise<PoolSynthesizer> {
    const pool = await InferencePool.create({
      name: opts.name ?? "tts_jobs",
      size: Math.max(1, opts.workers),
      init: { tts: opts.tts },
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
    opts: { speed?: number; ssml?: boolean; trim?: ChunkTrim } = {},
  ): Promise<SynthesizedChunk> {
    const r = await this.pool.submit({
      kind: "tts",
      text,
      voice: engine === "vits" ? undefined : voice,
      engine: engine as TtsEngineName,
      outRate: sampleRate,
      speed: opts.speed,
      ssml: opts.ssml ? parseSsml(text) : undefined,
      trim: opts.trim,
      words: false, // a job stores audio only
    }, { priority: "normal", retry: true });
    const pcm = asInt16(r.pcm);
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
