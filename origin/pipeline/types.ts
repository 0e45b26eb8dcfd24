/**
 * The seam between a live Session (origin/session, owns the WebRTC peer) and its SpeechPipeline
 * (origin/pipeline, owns VAD, recognition, synthesis for that session). The pipeline never touches wrtc or the
 * database directly: it gets frames pushed in, and talks back through a PipelineHost. This keeps the pipeline
 * testable by feeding PCM, with a host double in unit tests and the real Session in production.
 */
import type { ServerEventBody, SessionOptions } from "../../protocol/session_messages.ts";

/** One inbound audio frame from the peer: 10 ms of 48 kHz mono Int16 PCM (the session converts other rates). */
export interface InboundFrame {
  samples: Int16Array;
  sampleRate: 48000;
  /** Session time of the frame's first sample, ms since the session became active (monotonic clock). */
  timestampMs: number;
  /** Wall-clock performance.now() when the frame reached the origin: latency_ms is measured from this. */
  receivedAt: number;
}

/** Paced outbound audio (the session's RTCAudioSource, fed by a 10 ms clock). */
export interface OutboundAudio {
  /** Queue 48 kHz mono Int16 PCM of one utterance (may be called several times per utterance, in order). */
  enqueue(utteranceId: string, pcm48k: Int16Array): void;
  /** Mark that no more audio will be queued for this utterance (so `finished` can be reported). */
  endUtterance(utteranceId: string): void;
  /** Drop everything queued (barge-in). Returns ms played of each utterance that was cut. */
  clear(): Array<{ utteranceId: string; playedMs: number }>;
  /** ms of queued audio not yet played. */
  queuedMs(): number;
  /**
   * Playout notifications: called when the first sample of an utterance is handed to the source ("started",
   * with the session time of that moment) and when its last sample is ("finished").
   */
  onPlayout(
    listener: (
      e: { utteranceId: string; phase: "started" | "finished"; sessionTimeMs: number; playedMs: number },
    ) => void,
  ): void;
}

export interface PipelineHost {
  readonly sessionId: string;
  readonly tenantId: string;
  /**
   * Assign the next seq, persist, then send on the `events` channel. For a `transcript` event with status
   * `confirmed` the host persists the transcript segment atomically with the event BEFORE sending.
   * Resolves with the seq once persisted. Rejects if the session is closed.
   */
  emit(event: ServerEventBody): Promise<number>;
  readonly outbound: OutboundAudio;
  /** Current session time, ms since the session became active. */
  now(): number;
}

/** A `say`'s own choices; unset ones come from the session options. */
export interface SayOptions {
  /** A voice name of protocol/voices.ts. */
  voice?: string;
  speed?: number;
  /** `text` is SSML (protocol/ssml.ts subset). */
  ssml?: boolean;
}

/** What a Session drives. Created per session by the process-wide engine hub. */
export interface SpeechPipeline {
  readonly state: "running" | "closed";
  push(frame: InboundFrame): void;
  /**
   * `say` control message / echo mode: speak text back (sentence by sentence). Rejects with SsmlError
   * (protocol/ssml.ts) for invalid markup when `opts.ssml`, before anything is synthesized.
   */
  say(text: string, opts?: SayOptions): Promise<void>;
  setMuted(muted: boolean): void;
  setOptions(options: Partial<SessionOptions>): void;
  /**
   * End of input (the caller ends the session gracefully): the segment still open is ended as if silence
   * followed, and the promise resolves once its result has been emitted. Without it, a close drops the words
   * being spoken or decoded when the audio stops (a file's or a call's last words). The caller bounds the wait.
   */
  finish?(): Promise<void>;
  /** Idempotent. Stops timers, cancels queued inference for this session, flushes nothing further. */
  close(): Promise<void>;
}
