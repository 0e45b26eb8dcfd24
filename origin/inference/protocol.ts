/** Typed IPC between the inference pool (main isolate) and its workers. */
import type { MetricFamily } from "../../lib/metrics.ts";
import type { AsrConfig, AsrResult } from "../asr/engine.ts";
import type { SynthesisResult, TtsConfig, Voice } from "../tts/engine.ts";
import type { TtsEngineName } from "../../protocol/engines.ts";
import type { VadSeqItem, VadSeqResult } from "../pipeline/vad.ts";
import type { WireError } from "./errors.ts";
import type { DenoiseJob, DenoiseResult } from "../audio/denoise_states.ts";
import type { SsmlDocument } from "../../protocol/ssml.ts";

/** What a worker loads at start. Any subset. */
export interface WorkerInit {
  asr?: AsrConfig;
  tts?: TtsConfig;
  vad?: { modelPath?: string; intraOpNumThreads: number };
  /** Per-stream RNNoise states (origin/audio/denoise_states.ts). */
  denoise?: boolean;
  /**
   * Nice increment for this worker's thread relative to the main thread (Linux, per thread). Inference workers
   * run at +10 so that under CPU contention the media event loop is scheduled first: audio frames stay on time
   * and recognition absorbs the delay instead.
   */
  nice?: number;
  /** How often the worker sends its metrics to the pool's process (origin/inference/pool.ts), ms; default 1000. */
  metricsEveryMs?: number;
}

/**
 * Streaming recognition (engines with `openAsrStream`): a stream lives in one worker (its jobs are pinned there,
 * see SubmitOptions.worker); `stream` is the caller's id for it. Segments are utterances: audio fed with a new
 * `segment` id ends (drops) an unfinished earlier utterance.
 */
export type StreamJob =
  | { kind: "stream_open"; stream: string }
  /** Audio of a segment, in order; `partial` asks for the running hypothesis after it. */
  | { kind: "stream_feed"; stream: string; segment: number; pcm16k: Float32Array; partial: boolean }
  /** The segment's last audio, then its confirmed result. */
  | { kind: "stream_finish"; stream: string; segment: number; pcm16k: Float32Array }
  | { kind: "stream_close"; stream: string };

export type Job =
  | { kind: "asr"; pcm16k: Float32Array; final?: boolean; language?: string }
  | StreamJob
  | {
    kind: "tts";
    text: string;
    voice?: string;
    engine?: TtsEngineName;
    outRate?: number;
    /** Speaking rate (protocol/voices.ts MIN_SPEED–MAX_SPEED). */
    speed?: number;
    /** Validated, normalised SSML (protocol/ssml.ts): rendered run by run instead of `text`. */
    ssml?: SsmlDocument;
    /** Silence kept at the edges (origin/tts/trim_edges.ts), applied at the engine's rate before `outRate`. */
    trim?: { headMs?: number; tailMs?: number };
    /** false: no word timings needed (origin/tts/engine.ts SynthesisOptions.words). */
    words?: boolean;
  }
  | { kind: "voices"; engine?: TtsEngineName }
  | { kind: "vad"; items: VadSeqItem[] }
  | ({ kind: "denoise" } & DenoiseJob)
  /** Test hooks: prove supervision (crash → restart), timeouts, and that a failure keeps its class. */
  | { kind: "crash" }
  | { kind: "sleep"; ms: number }
  | { kind: "fail"; error: WireError };

export interface TtsJobResult extends Omit<SynthesisResult, "pcm"> {
  pcm: Int16Array | Float32Array;
}

export type JobResult<J extends Job> = J extends { kind: "asr" } ? AsrResult
  : J extends { kind: "stream_open" } ? { streams: number }
  : J extends { kind: "stream_feed" } ? { partial: string | null }
  : J extends { kind: "stream_finish" } ? AsrResult
  : J extends { kind: "stream_close" } ? { closed: boolean }
  : J extends { kind: "tts" } ? TtsJobResult
  : J extends { kind: "voices" } ? Voice[]
  : J extends { kind: "vad" } ? VadSeqResult
  : J extends { kind: "denoise" } ? DenoiseResult
  : J extends { kind: "sleep" } ? { slept: number }
  : never;

export type ToWorker =
  | { type: "init"; init: WorkerInit }
  | { type: "job"; id: number; job: Job }
  | { type: "close" };

export type FromWorker =
  | { type: "ready"; loaded: string[]; loadMs: number }
  | { type: "init_error"; error: string }
  | { type: "result"; id: number; ok: true; value: unknown; busyMs: number }
  | { type: "result"; id: number; ok: false; error: WireError; busyMs: number }
  | { type: "metrics"; families: MetricFamily[] }
  | { type: "closed" };
