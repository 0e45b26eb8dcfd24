/**
 * What the origin's HTTP layer and registry need from the parts that do the work. The concrete classes live in
 * origin/session (WebRTC sessions), origin/pipeline (engines) and origin/tts_jobs (batch synthesis); these
 * interfaces keep the server wiring independent of them and let tests plug in small doubles.
 */
import type { SayOptions } from "./pipeline/types.ts";
import type { CreateSessionRequest, SessionSummary } from "../protocol/internal_api.ts";
import type { CloseReason } from "../protocol/session_messages.ts";
import type { TranscribeLine } from "../protocol/openai.ts";

/** Thrown by SessionService.create when this origin can't take the session (edge retries elsewhere → 503). */
export class OriginBusyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "OriginBusyError";
  }
}

export interface SessionService {
  /** Negotiate a session; resolves with the SDP answer (ICE gathering complete). Throws ApiError for bad input. */
  create(req: CreateSessionRequest): Promise<{ sdp: string }>;
  /**
   * Start a session carried by an upgraded WebSocket (GET /internal/listen); resolves once it is active.
   * Throws like create(). Optional: an origin without it refuses streams.
   */
  createStream?(
    req: { socket: WebSocket; sampleRate?: number; options: unknown; tenantId: string; sessionId: string },
    resume?: { last_seq: number },
  ): Promise<unknown>;
  get(id: string): SessionSummary | null;
  /** End one session (idempotent); null when this origin doesn't know it. */
  end(id: string, reason: CloseReason): Promise<SessionSummary | null>;
  /** Speak on a live session (REST `say`); null when unknown here, ClosedError when it is closing. */
  say(id: string, text: string, opts?: SayOptions): Promise<SessionSummary | null>;
  /** Live sessions (the load reported in heartbeats). */
  readonly load: number;
  /** Stop taking sessions (draining). */
  drain(): void;
  /** Send bye to every session with the reason, close them all, release shared resources. Idempotent. */
  close(reason: CloseReason): Promise<void>;
}

/** Anything with readiness and a close (engines, job workers). */
export interface OriginComponent {
  readonly name: string;
  ready(): boolean | Promise<boolean>;
  /** Idempotent. */
  close(): Promise<void>;
  /**
   * Work that live sessions don't need (TTS job workers): a recycling origin closes it as soon as it stops
   * accepting, so the successor alone takes it on while the old process finishes its calls.
   */
  readonly closeOnRecycle?: boolean;
}

/** Uploaded-file transcription (origin/transcribe): 16 kHz audio in, confirmed segments out as they come. */
export interface TranscriptionService {
  transcribe(
    pcm16k: Float32Array,
    opts: { language?: string; signal?: AbortSignal; requestId?: string },
  ): AsyncGenerator<TranscribeLine>;
  /** Transcriptions running now (part of the load reported in heartbeats). */
  readonly active: number;
}
