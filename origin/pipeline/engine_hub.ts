/**
 * The process-wide engine hub: loads the speech engines once (in inference worker pools), and creates one
 * SpeechPipeline per session on top of them.
 *
 *  - `vad` pool: 1 worker with Silero VAD; chunks of all sessions arriving together are evaluated in one batch.
 *  - `denoise` pool: 1 worker with per-stream RNNoise states, started on the first session that asks for
 *    noise suppression; frames of all such sessions arriving together go in one batch.
 *  - `speech` pool: `workers` workers, each with the ASR engine and the synthesis engine(s); priority queue
 *    (a streaming recognizer's end of utterance > confirmed decodes and streaming audio > synthesis > partial
 *    decodes), partials shed first under overload.
 *
 * Usage (origin):
 *   const hub = await EngineHub.create(engineHubConfig(config));   // at startup, before /readyz is green
 *   const pipeline = hub.createPipeline(sessionHost, sessionOptions); // per session
 *   pipeline.push(frame) … pipeline.close();
 *   hub.ready();  // for /readyz
 *   await hub.close();  // on shutdown: closes pipelines, then pools (workers terminated)
 */
import type { SessionOptions } from "../../protocol/session_messages.ts";
import type { PipelineHost, SpeechPipeline } from "./types.ts";
import type { AsrConfig } from "../asr/engine.ts";
import type { TtsConfig, Voice } from "../tts/engine.ts";
import type { TtsEngineName } from "../../protocol/engines.ts";
import { resolveVoice, unknownVoiceMessage } from "../../protocol/voices.ts";
import { UnknownVoiceError } from "../tts/flite/errors.ts";
import { InferencePool } from "../inference/pool.ts";
import { type RecognitionStreams, StreamingStrategy } from "./stream_decode.ts";
import { OverloadedError, WorkerCrashedError } from "../inference/errors.ts";
import { ClosedError } from "../../lib/closed_error.ts";
import type { TtsJobResult } from "../inference/protocol.ts";
import { BatchingVad } from "./vad.ts";
import { Recognizer, type TranscriptBody } from "./recognizer.ts";
import { type RecognitionEngine, RedecodeStrategy } from "./redecode.ts";
import { BatchingDenoiser } from "../audio/denoise.ts";
import { makesUpPhrases, MIN_CONFIDENCE_BY_ENGINE } from "../asr/junk_filter.ts";
import {
  DEFAULT_PIPELINE_CONFIG,
  type PipelineConfig,
  type PipelineEngines,
  StreamingPipeline,
  type StreamingPipelineInit,
} from "./speech_pipeline.ts";
import { log as rootLog } from "../../lib/log.ts";
import { registry } from "../../lib/metrics.ts";

export interface EngineHubConfig {
  asr: AsrConfig;
  tts: TtsConfig;
  /** Speech (ASR + TTS) workers (ASR_WORKERS). */
  workers: number;
  /** Pool limits. */
  queueLimit: number;
  /** Partial decodes are refused when this many jobs wait (default 2 × workers). */
  partialQueueLimit?: number;
  initTimeoutMs: number;
  jobTimeoutMs: number;
  /**
   * Nice increment of ASR/TTS worker threads over the media loop thread (the VAD worker stays at +0: every
   * session's segmentation waits on it, and it is cheap). Default 5: the
   * media loop wins under contention, yet inference is not starved by other nice-0 processes on the host.
   */
  workerNice: number;
  pipeline: Partial<PipelineConfig>;
}

/** Streaming engines feed audio as it arrives: a partial costs little, so they come ≤ 250 ms apart. */
const STREAMING_PARTIALS: Partial<PipelineConfig> = { partialIntervalMs: 250 };

/** Pool tuning (not configuration): what `EngineHub.create` uses where its caller gives nothing. */
export const HUB_TUNING: Omit<EngineHubConfig, "asr" | "tts" | "workers"> = {
  queueLimit: 1000,
  initTimeoutMs: 120_000,
  jobTimeoutMs: 30_000,
  workerNice: 5,
  pipeline: {},
};

/** The engines and worker count (origin/engine_config.ts builds them from Config), tuning optional. */
export type EngineHubOptions = Pick<EngineHubConfig, "asr" | "tts" | "workers"> & Partial<EngineHubConfig>;

const mDecodeOverload = registry.counter(
  "parley_asr_partials_shed_total",
  "Partial decodes refused by the pool under overload",
);

export class EngineHub {
  private readonly pipelines = new Set<SpeechPipeline>();
  private closing: Promise<void> | null = null;
  private readonly log = rootLog.child({ component: "engine_hub" });
  private readonly vad: BatchingVad;
  /** Uploaded files' VAD: its own batches, queued behind every live session's VAD run. */
  private readonly fileVad: BatchingVad;
  private readonly denoiser: BatchingDenoiser;
  private denoisePool: Promise<InferencePool> | null = null;

  private constructor(
    readonly config: EngineHubConfig,
    private readonly speechPool: InferencePool,
    private readonly vadPool: InferencePool,
  ) {
    this.vad = new BatchingVad((items) =>
      this.vadPool.submit({ kind: "vad", items }, { priority: "high", retry: true })
    );
    this.fileVad = new BatchingVad((items) =>
      this.vadPool.submit({ kind: "vad", items }, { priority: "normal", retry: true })
    );
    this.denoiser = new BatchingDenoiser(async (job) =>
      (await this.denoiseWorkers()).submit({ kind: "denoise", ...job }, { priority: "high", retry: true })
    );
  }

  /** The denoise pool, started on first use (most deployments never pay for its worker). */
  private denoiseWorkers(): Promise<InferencePool> {
    if (this.closing) return Promise.reject(new ClosedError("engine hub"));
    this.denoisePool ??= InferencePool.create({
      name: "denoise",
      size: 1,
      init: { denoise: true },
      initTimeoutMs: this.config.initTimeoutMs,
      jobTimeoutMs: this.config.jobTimeoutMs,
      queueLimit: this.config.queueLimit,
    });
    const p = this.denoisePool;
    p.catch(() => {
      if (this.denoisePool === p) this.denoisePool = null; // a failed start is retried by the next batch
    });
    return p;
  }

  /** Noise-suppression streams open, and RNNoise states alive in the denoise worker (leak tests). */
  denoiseStats(): { streams: number; workerStates: number } {
    return { streams: this.denoiser.openStreams, workerStates: this.denoiser.workerStates };
  }

  static async create(config: EngineHubOptions): Promise<EngineHub> {
    const cfg: EngineHubConfig = { ...HUB_TUNING, ...config };
    const t0 = performance.now();
    const common = {
      initTimeoutMs: cfg.initTimeoutMs,
      jobTimeoutMs: cfg.jobTimeoutMs,
      queueLimit: cfg.queueLimit,
    };
    const [vadPool, speechPool] = await Promise.allSettled([
      InferencePool.create({
        name: "vad",
        size: 1,
        init: { vad: { intraOpNumThreads: 1 } },
        ...common,
      }),
      InferencePool.create({
        name: "speech",
        size: cfg.workers,
        init: { asr: cfg.asr, tts: cfg.tts, nice: cfg.workerNice },
        lowQueueLimit: cfg.partialQueueLimit ?? Math.max(2, cfg.workers * 2),
        ...common,
      }),
    ]);
    if (vadPool.status === "rejected" || speechPool.status === "rejected") {
      await Promise.allSettled([
        vadPool.status === "fulfilled" ? vadPool.value.close() : null,
        speechPool.status === "fulfilled" ? speechPool.value.close() : null,
      ]);
      throw vadPool.status === "rejected" ? vadPool.reason : (speechPool as PromiseRejectedResult).reason;
    }
    const hub = new EngineHub(cfg, speechPool.value, vadPool.value);
    hub.log.info("engines loaded", {
      asr: `${cfg.asr.engine}:${cfg.asr.model}`,
      tts: cfg.tts.engine,
      workers: cfg.workers,
      load_ms: Math.round(performance.now() - t0),
    });
    return hub;
  }

  get state(): "ready" | "closed" {
    return this.closing ? "closed" : "ready";
  }

  /** For /readyz: engines loaded and at least one worker of each pool alive. */
  ready(): { ready: boolean; detail: Record<string, unknown> } {
    const detail = {
      asr: `${this.config.asr.engine}:${this.config.asr.model}`,
      tts: this.config.tts.engine,
      speech_workers: this.speechPool.liveWorkers,
      vad_workers: this.vadPool.liveWorkers,
      queue_depth: this.speechPool.queueDepth,
      pipelines: this.pipelines.size,
    };
    return { ready: !this.closing && this.speechPool.healthy && this.vadPool.healthy, detail };
  }

  get activePipelines(): number {
    return this.pipelines.size;
  }

  /** Pool stats (benchmarks, ops). */
  stats(): {
    speechQueue: number;
    speechLiveQueue: number;
    speechBusy: number;
    vadQueue: number;
    vadPending: number;
  } {
    return {
      speechQueue: this.speechPool.queueDepth,
      speechLiveQueue: this.speechPool.liveQueueDepth,
      speechBusy: this.speechPool.busyCount,
      vadQueue: this.vadPool.queueDepth,
      vadPending: this.vad.queued,
    };
  }

  /** The result filters of the configured recognizer, for live sessions and uploaded files alike. */
  private engineFilters(): Pick<PipelineConfig, "minConfidence" | "dropHallucinations"> {
    const engine = this.config.asr.engine;
    return {
      minConfidence: MIN_CONFIDENCE_BY_ENGINE[engine] ?? DEFAULT_PIPELINE_CONFIG.minConfidence,
      dropHallucinations: makesUpPhrases(engine),
    };
  }

  /** `init.decoder`: a DecodeStrategy other than re-decoding on the speech pool (e.g. a streaming engine's). */
  createPipeline(
    host: PipelineHost,
    options: SessionOptions,
    config: Partial<PipelineConfig> = {},
    init: Omit<StreamingPipelineInit, "onClosed"> = {},
  ): StreamingPipeline {
    if (this.closing) throw new ClosedError("engine hub");
    const streaming = this.config.asr.engine === "sphinx" && !init.decoder;
    const merged: Partial<PipelineConfig> = {
      ...DEFAULT_PIPELINE_CONFIG,
      ...this.engineFilters(),
      ...(streaming ? STREAMING_PARTIALS : {}),
      ...this.config.pipeline,
      ...config,
    };
    const decoder = streaming
      ? new StreamingStrategy(
        this.recognitionStreams(),
        `pipeline:${host.sessionId}`,
        (code, message) => void host.emit({ type: "error", code, message }).catch(() => {}),
      )
      : init.decoder;
    const p = new StreamingPipeline(host, this.engines(), options, merged, {
      ...init,
      decoder,
      onClosed: (closed) => this.pipelines.delete(closed),
    });
    this.pipelines.add(p);
    return p;
  }

  /** Synthesis for other users (the TTS job worker): PCM at the engine's rate, or `outRate` if given. */
  synthesize(
    text: string,
    opts: { voice?: string; engine?: TtsEngineName; outRate?: number } = {},
  ): Promise<TtsJobResult> {
    if (this.closing) return Promise.reject(new ClosedError("engine hub"));
    return this.speechPool.submit({ kind: "tts", text, ...opts }, { priority: "normal" });
  }

  /**
   * A Recognizer for an uploaded file: the live pipeline's VAD, segmenter and decoding, with no partials; the
   * VAD runs behind live sessions' and every decode at `background` priority (any live job overtakes it).
   * The caller pushes 16 kHz audio with `push16k`, then `finish()`, and `close()`s it.
   */
  createFileRecognizer(
    owner: string,
    language: string | undefined,
    emit: (event: TranscriptBody) => Promise<unknown>,
    onError?: (code: string, message: string) => void,
  ): Recognizer {
    if (this.closing) throw new ClosedError("engine hub");
    const pool = this.speechPool;
    const engine: RecognitionEngine = {
      recognize: (pcm16k, opts) =>
        pool.submit({ kind: "asr", pcm16k, final: true, language: opts.language }, {
          priority: "background",
          owner: opts.owner,
          retry: true,
        }),
      promote: () => {},
      cancel: (o) => void pool.cancelOwner(o),
    };
    const cfg = { ...DEFAULT_PIPELINE_CONFIG, ...this.engineFilters(), ...this.config.pipeline };
    return new Recognizer({
      emit,
      vad: this.fileVad,
      decoder: new RedecodeStrategy(engine, owner, () => language, false),
      partials: () => false,
      onError,
      log: this.log.child({ owner }),
      config: cfg,
      live: false,
    });
  }

  listVoices(engine?: TtsEngineName): Promise<Voice[]> {
    return this.speechPool.submit({ kind: "voices", engine }, { priority: "normal" });
  }

  close(): Promise<void> {
    if (this.closing) return this.closing;
    this.closing = (async () => {
      await Promise.allSettled([...this.pipelines].map((p) => p.close()));
      await this.denoiser.idle(); // closed pipelines' states are freed before the worker goes
      const denoise = this.denoisePool ? await this.denoisePool.catch(() => null) : null;
      await Promise.allSettled([this.speechPool.close(), this.vadPool.close(), denoise?.close()]);
      this.log.info("engine hub closed");
    })();
    return this.closing;
  }

  /** Recognition streams on the speech pool: each pinned to the worker that holds its decoder. */
  private recognitionStreams(): RecognitionStreams {
    const pool = this.speechPool;
    return {
      open: async (stream) => {
        const pin = pool.pin();
        if (!pin) throw new WorkerCrashedError("no live speech worker");
        const opts = { priority: "high" as const, worker: pin, owner: stream };
        try {
          // may build a decoder (a model load): the init limit, not the per-decode one
          await pool.submit({ kind: "stream_open", stream }, {
            ...opts,
            timeoutMs: this.config.initTimeoutMs,
          });
        } catch (e) {
          pool.unpin(pin);
          throw e;
        }
        let closed = false;
        return {
          feed: (segment, pcm16k, partial) =>
            pool.submit({ kind: "stream_feed", stream, segment, pcm16k, partial }, {
              ...opts,
              transfer: true,
            })
              .then((r) => r.partial),
          // The end of an utterance overtakes other streams' queued audio (its own runs first, see the pool):
          // when the workers fall behind, the confirmed result a user waits for is not queued behind every
          // other session's speech, and the audio it overtook is still decoded, only later.
          finish: (segment, pcm16k) =>
            pool.submit({ kind: "stream_finish", stream, segment, pcm16k }, {
              ...opts,
              priority: "urgent",
              transfer: true,
            }),
          close: () => {
            if (closed) return;
            closed = true;
            pool.unpin(pin);
            pool.cancelOwner(stream); // queued feeds of an ended session are not needed
            if (pool.state !== "closed" && pool.pinAlive(pin)) {
              // after the session's queued feeds (same worker, same priority, FIFO)
              pool.submit({ kind: "stream_close", stream }, opts).catch(() => {});
            }
          },
        };
      },
    };
  }

  private engines(): PipelineEngines {
    const pool = this.speechPool;
    return {
      vad: this.vad,
      denoiser: () => this.denoiser.open(),
      recognize: (pcm16k, opts) =>
        pool.submit({ kind: "asr", pcm16k, final: opts.kind !== "partial", language: opts.language }, {
          // speculative final decodes rank with partials: shed first, the confirmed path falls back; a
          // partial of a segment that shows no text yet (the user sees text start) goes before both
          priority: opts.kind === "confirmed" ? "high" : opts.first ? "normal" : "low",
          owner: opts.owner,
          coalesceKey: opts.coalesceKey,
          retry: opts.kind === "confirmed",
          transfer: opts.kind !== "confirmed", // fresh copies made for this job
        }).catch((e) => {
          if (e instanceof OverloadedError) mDecodeOverload.inc();
          throw e;
        }),
      synthesize: (text, voice, owner, opts = {}) => {
        const resolved = resolveVoice(voice, {
          engine: this.config.tts.engine,
          voice: this.config.tts.voice,
        });
        if (!resolved) {
          return Promise.reject(new UnknownVoiceError(voice ?? "", [], unknownVoiceMessage(voice ?? "")));
        }
        const v = resolved.engine === "vits" ? undefined : resolved.voice;
        return pool.submit(
          { kind: "tts", text, voice: v, engine: resolved.engine, outRate: 48000, ...opts },
          {
            priority: "normal",
            owner,
          },
        );
      },
      cancel: (owner) => void pool.cancelOwner(owner),
      promote: (key) => void pool.promote(key, "high"),
    };
  }
}
