/** Typed IPC between the inference pool (main isolate) and its workers. */
import type { AsrConfig, AsrResult } from "../asr/engine.ts";
import type { SynthesisResult, TtsConfig, Voice } from "../tts/engine.ts";
import type { TtsEngineName } from "../../protocol/engines.ts";
import type { VadSeqItem, VadSeqResult } from "../pipeline/vad.ts";
import type { WireError } from "./errors.ts";
import type { SsmlDocument } from "../../protocol/ssml.ts";

/** What a worker loads at start. Any subset. */
export interface WorkerInit {
  asr?: AsrConfig;
  tts?: TtsConfig;
  vad?: { modelPath?: string; intraOpNumThreads: number };
  /**
   * Nice increment for this worker's thread relative to the main thread (Linux, per thread). Inference workers
   * run at +10 so that under CPU contention the media event loop is scheduled first: audio frames stay on time
   * and recognition absorbs the delay instead.
   */
  nice?: number;
}

export type Job =
  | { kind: "asr"; pcm16k: Float32Array; final?: boolean; language?: string }
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
  }
  | { kind: "voices"; engine?: TtsEngineName }
  | { kind: "vad"; items: VadSeqItem[] }
  /** Test hooks: prove supervision (crash → restart), timeouts, and that a failure keeps its class. */
  | { kind: "crash" }
  | { kind: "sleep"; ms: number }
  | { kind: "fail"; error: WireError };

export interface TtsJobResult extends Omit<SynthesisResult, "pcm"> {
  pcm: Int16Array | Float32Array;
}

export type JobResult<J extends Job> = J extends { kind: "asr" } ? AsrResult
  : J extends { kind: "tts" } ? TtsJobResult
  : J extends { kind: "voices" } ? Voice[]
  : J extends { kind: "vad" } ? VadSeqResult
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
  | { type: "closed" };
