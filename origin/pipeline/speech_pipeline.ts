/**
 * One session's speech pipeline: a Recognizer (frames → VAD → segments → `transcript` events, ./recognizer.ts)
 * and a Speaker (text → synthesis → outbound audio with `utterance` and `telop` events, ./speaker.ts), wired
 * together by the recognizer's messages: speech start → `speaker.interrupt()` (barge-in, when the session
 * asks for it), confirmed transcript → `speaker.say()` of it (echo mode).
 *
 * Everything heavy runs in the shared inference pools; the parts only move buffers and keep state, so the
 * event loop that paces audio is never blocked for more than a few hundred microseconds per frame.
 */
import type { SessionOptions } from "../../protocol/session_messages.ts";
import type { InboundFrame, PipelineHost, SayOptions, SpeechPipeline } from "./types.ts";
import type { VadBackend } from "./vad.ts";
import type { FrameDenoiser } from "../audio/denoise.ts";
import {
  DEFAULT_RECOGNIZER_CONFIG,
  Recognizer,
  type RecognizerConfig,
  type RecognizerMessage,
} from "./recognizer.ts";
import { type RecognitionEngine, RedecodeStrategy } from "./redecode.ts";
import type { DecodeStrategy } from "./decode.ts";
import { Speaker, type SynthesisEngines } from "./speaker.ts";
import { ClosedError } from "../../lib/closed_error.ts";
import { log as rootLog, type Logger } from "../../lib/log.ts";
import { registry } from "../../lib/metrics.ts";

export interface PipelineConfig extends RecognizerConfig {
  /** Longest text accepted by say(). */
  maxSayChars: number;
  /** Start the final decode as soon as silence begins (ready when the end-of-speech window closes). */
  speculativeFinal: boolean;
  /** A say that starts in silence plays a short lead piece of its first sentence first (see ./speaker.ts). */
  sayLeadPiece: boolean;
}

export const DEFAULT_PIPELINE_CONFIG: PipelineConfig = {
  ...DEFAULT_RECOGNIZER_CONFIG,
  maxSayChars: 5000,
  speculativeFinal: true,
  sayLeadPiece: true,
};

/** What the hub gives a pipeline: the shared engines, as async calls. */
export interface PipelineEngines extends RecognitionEngine, SynthesisEngines {
  vad: VadBackend;
  /** A noise-suppression stream for the `noise_suppression` option (absent: the option has no effect). */
  denoiser?: () => FrameDenoiser;
}

export interface StreamingPipelineInit {
  /** How recognition asks the engine; default: re-decoding the growing segment (RedecodeStrategy). */
  decoder?: DecodeStrategy;
  /** Called once, synchronously, when close() begins (the hub forgets the pipeline). */
  onClosed?: (pipeline: StreamingPipeline) => void;
}

const mActive = registry.gauge("parley_pipelines_active", "Live speech pipelines");

export class StreamingPipeline implements SpeechPipeline {
  private _state: "running" | "closed" = "running";
  private options: SessionOptions;
  private readonly log: Logger;
  private readonly onClosed?: (pipeline: StreamingPipeline) => void;
  readonly recognizer: Recognizer;
  readonly speaker: Speaker;

  constructor(
    host: PipelineHost,
    engines: PipelineEngines,
    options: SessionOptions,
    config: Partial<PipelineConfig> = {},
    init: StreamingPipelineInit = {},
  ) {
    const cfg = { ...DEFAULT_PIPELINE_CONFIG, ...config };
    this.options = { ...options };
    this.onClosed = init.onClosed;
    const owner = `pipeline:${host.sessionId}`;
    this.log = rootLog.child({ component: "pipeline", session_id: host.sessionId, tenant_id: host.tenantId });
    this.recognizer = new Recognizer({
      emit: (event) => host.emit(event),
      vad: engines.vad,
      decoder: init.decoder ??
        new RedecodeStrategy(engines, owner, () => this.options.language, cfg.speculativeFinal),
      partials: () => this.options.partials,
      denoiser: engines.denoiser?.(),
      noiseSuppression: () => this.options.noise_suppression,
      silenceMs: options.vad_silence_ms,
      onMessage: (m) => this.onRecognizer(m),
      // the re-decoding strategy only; a strategy passed in (the streaming one) reports its own failures
      onError: init.decoder
        ? undefined
        : (code, message) => void host.emit({ type: "error", code, message }).catch(() => {}),
      log: this.log,
      config: cfg,
    });
    this.speaker = new Speaker({
      host,
      engines,
      owner: `${owner}:tts`,
      voice: () => this.options.voice,
      speed: () => this.options.speed,
      maxChars: cfg.maxSayChars,
      leadPiece: cfg.sayLeadPiece,
      name: `pipeline ${host.sessionId}`,
      log: this.log,
    });
    mActive.inc();
  }

  get state(): "running" | "closed" {
    return this._state;
  }

  /** Stream samples (16 kHz) consumed by the VAD so far. */
  get position16k(): number {
    return this.recognizer.position16k;
  }

  push(frame: InboundFrame): void {
    this.recognizer.push(frame);
  }

  /** Resolves when every pushed chunk has been through the VAD and segmenter (tests, benchmarks). */
  drain(): Promise<void> {
    return this.recognizer.drain();
  }

  say(text: string, opts?: SayOptions): Promise<void> {
    return this.speaker.say(text, opts);
  }

  setMuted(muted: boolean): void {
    this.recognizer.setMuted(muted);
  }

  setOptions(options: Partial<SessionOptions>): void {
    this.options = { ...this.options, ...options };
    if (options.vad_silence_ms) this.recognizer.setSilenceMs(options.vad_silence_ms);
  }

  /** End of input: the open segment is ended and its confirmed result emitted (see SpeechPipeline.finish). */
  finish(): Promise<void> {
    if (this._state === "closed") return Promise.resolve();
    return this.recognizer.finish();
  }

  close(): Promise<void> {
    if (this._state === "closed") return Promise.resolve();
    this._state = "closed";
    this.speaker.close();
    this.recognizer.close();
    mActive.dec();
    this.onClosed?.(this);
    this.log.debug("pipeline closed");
    return Promise.resolve();
  }

  private onRecognizer(m: RecognizerMessage): void {
    if (m.type === "speech_started") {
      if (this.options.barge_in) this.speaker.interrupt();
    } else if (this.options.mode === "echo") {
      this.speaker.say(m.event.alternatives[0].text).catch((err) => {
        if (!(err instanceof ClosedError)) this.log.warn("echo failed", { error: err });
      });
    }
  }
}
