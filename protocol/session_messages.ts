/**
 * Wire messages of a live session's data channels, defined once and imported by the origin (which sends
 * `events` and validates `control`) and by the web client (which does the opposite).
 *
 * Channels are created by the CLIENT before it makes its offer (negotiated in-band, so they are in the SDP and
 * the server never has to renegotiate): label `events` (server → client) and `control` (client → server).
 * Every server event carries `seq`, strictly increasing by 1 per session, starting at 1. Events are persisted
 * (session_events) before they are sent, so a resuming client can fetch what it missed.
 */
import { z } from "zod";
import { ForbiddenKeyError, parseClientJson } from "./json.ts";
import { PgText } from "./pg_domains.ts";
import { isKnownVoiceName, MAX_SPEED, MIN_SPEED, unknownVoiceMessage } from "./voices.ts";

export const SESSION_MODES = ["transcribe", "echo", "say"] as const;
export type SessionMode = typeof SESSION_MODES[number];

export const SESSION_STATES = ["connecting", "active", "closing", "closed"] as const;
export type SessionState = typeof SESSION_STATES[number];

/**
 * What carries a session: a WebRTC peer, a WebSocket stream, a phone call (SIP/RTP), or `file`: an uploaded
 * file's transcription kept in history (POST /v1/audio/transcriptions with store=true).
 */
export const SESSION_KINDS = ["webrtc", "websocket", "sip", "file"] as const;
export type SessionKind = typeof SESSION_KINDS[number];

export const CLOSE_REASONS = [
  "client_hangup",
  /** The far end of a phone call hung up (SIP BYE, or RTCP BYE). */
  "remote_hangup",
  "ice_failed",
  "ice_disconnected_timeout",
  "media_timeout",
  "origin_shutdown",
  "origin_lost",
  "admin",
  "error",
  /** The database stayed unreachable past the session's event backlog bound (docs/reliability.md). */
  "database_unavailable",
  /** A stored file transcription (kind `file`) finished. */
  "completed",
] as const;
export type CloseReason = typeof CLOSE_REASONS[number];

/** Visemes (mouth shapes) for lip-sync: Japanese-style five vowels plus closed/rest. */
export const VISEMES = ["a", "i", "u", "e", "o", "closed", "rest"] as const;
export type Viseme = typeof VISEMES[number];

// ---------- session options (given at creation, some changeable with set_options) ----------

/** A voice name resolvable by protocol/voices.ts (`resolveVoice`); unknown names name GET /v1/voices. */
export const VoiceName = z.string().min(1).max(64).refine((v) => isKnownVoiceName(v), {
  error: (i) => unknownVoiceMessage(String(i.input)),
});
export const Speed = z.number().min(MIN_SPEED).max(MAX_SPEED);

export const SessionOptions = z.object({
  mode: z.enum(SESSION_MODES).default("transcribe"),
  language: PgText.min(2).max(16).default("en"),
  /** A voice name of protocol/voices.ts (`flite:rms`, `espeak:de`, or a bare id); see GET /v1/voices. */
  voice: VoiceName.optional(),
  /** Speaking rate of the session's voice (1 = the voice's own rate). */
  speed: Speed.optional(),
  /** Stop playback when the user starts speaking over it. */
  barge_in: z.boolean().default(true),
  /** End-of-speech silence in ms before a segment is confirmed. */
  vad_silence_ms: z.number().int().min(100).max(3000).optional(),
  /** Send partial results. */
  partials: z.boolean().default(true),
  /** Publish into this room (its listeners hear this session; its captions become the room's). */
  room: z.uuid().optional(),
  /**
   * RNNoise on the inbound audio before recognition. Default chosen by measurement (docs/recognition.md,
   * bench/noise_suppression.ts).
   */
  noise_suppression: z.boolean().default(false),
}).strict();
export type SessionOptions = z.infer<typeof SessionOptions>;

// ---------- server → client events ----------

export const Alternative = z.object({ text: z.string(), score: z.number() });
export type Alternative = z.infer<typeof Alternative>;

/**
 * One recognised word with its place in session time. `confidence` is 0..1 (engine-specific measure, see
 * docs/recognition.md), null when the engine gives timings but no confidence for it.
 */
export interface TranscriptWord {
  text: string;
  start_ms: number;
  end_ms: number;
  confidence: number | null;
}

export interface TranscriptEvent {
  type: "transcript";
  seq: number;
  segment_id: number;
  status: "partial" | "confirmed";
  alternatives: Alternative[];
  /** Prefix of alternatives[0].text that will not change any more (LocalAgreement). */
  stable_text: string;
  /** The rest, may still change. stable_text + unstable_text === alternatives[0].text */
  unstable_text: string;
  /** Session time (ms since the session became active) of the segment's start and end. */
  start_ms: number;
  end_ms: number;
  /** Time from the audio that produced this result reaching the origin to the event being sent. */
  latency_ms: number;
  /**
   * Words of alternatives[0] with session-time timings, when the engine aligns them (ctc, sphinx); left out
   * otherwise. Partials carry them too when the engine gives them.
   */
  words?: TranscriptWord[];
  /** 0..1 confidence of alternatives[0] when the engine reports one; left out otherwise. */
  confidence?: number;
}

export interface TelopWord {
  text: string;
  /** Relative to playout start of the utterance. */
  start_ms: number;
  duration_ms: number;
  /** Character range of the word in the utterance text. */
  char_start: number;
  char_end: number;
}

export interface TelopPhoneme {
  phoneme: string;
  start_ms: number;
  duration_ms: number;
  viseme: Viseme;
}

/** Sent when an utterance starts playing: its full timeline, relative to playout start. */
export interface TelopEvent {
  type: "telop";
  seq: number;
  utterance_id: string;
  text: string;
  /** Session time at which playout of the first sample starts (the client aligns to its own clock). */
  playout_start_ms: number;
  duration_ms: number;
  words: TelopWord[];
  phonemes: TelopPhoneme[];
  /** true when the engine gave no timings and they were estimated from text length. */
  estimated: boolean;
}

/** Playback progress of an utterance: started, finished, or cut by barge-in (with how much was heard). */
export interface UtteranceEvent {
  type: "utterance";
  seq: number;
  utterance_id: string;
  phase: "started" | "finished" | "interrupted";
  played_ms: number;
  /** For interrupted: the part of the text that was actually played (by word timings). */
  played_text?: string;
}

export interface StateEvent {
  type: "state";
  seq: number;
  state: SessionState;
  session_id: string;
  node_id?: string;
  muted?: boolean;
  options?: SessionOptions;
}

export interface ByeEvent {
  type: "bye";
  seq: number;
  reason: CloseReason;
  message?: string;
}

export interface ErrorEvent {
  type: "error";
  seq: number;
  code: string;
  message: string;
}

export interface PongEvent {
  type: "pong";
  seq: number;
  id: string | number;
  server_time_ms: number;
}

/** A phone call's caller pressed a key (RFC 4733 telephone-event). */
export interface DtmfEvent {
  type: "dtmf";
  seq: number;
  /** 0-9, *, #, A-D */
  digit: string;
  duration_ms: number;
}

export type ServerEvent =
  | DtmfEvent
  | TranscriptEvent
  | TelopEvent
  | UtteranceEvent
  | StateEvent
  | ByeEvent
  | ErrorEvent
  | PongEvent;
/** An event before the session assigns its seq. */
export type ServerEventBody = ServerEvent extends infer E ? E extends ServerEvent ? Omit<E, "seq"> : never
  : never;

// ---------- client → server control messages ----------

/** Text to speak on a live session: the `say` control message, and `POST /v1/sessions/{id}/say`. */
export const SayRequest = z.object({
  /** Refused when it has nothing to speak (no letter or digit: e.g. only control characters or punctuation). */
  text: z.string().min(1).max(5000).regex(
    /[\p{L}\p{N}]/u,
    "nothing to speak: the text has no letters or digits",
  ),
  voice: VoiceName.optional(),
  speed: Speed.optional(),
  /** `text` is SSML (protocol/ssml.ts subset): validated and normalised before synthesis. */
  ssml: z.boolean().optional(),
}).strict();
export type SayRequest = z.infer<typeof SayRequest>;

export const ControlMessage = z.discriminatedUnion("type", [
  SayRequest.extend({ type: z.literal("say") }).strict(),
  z.object({ type: z.literal("mute"), muted: z.boolean() }).strict(),
  z.object({ type: z.literal("set_options"), options: SessionOptions.partial().omit({ mode: true }) })
    .strict(),
  z.object({ type: z.literal("ping"), id: z.union([z.string().max(64), z.number()]) }).strict(),
  z.object({ type: z.literal("bye") }).strict(),
]);
export type ControlMessage = z.infer<typeof ControlMessage>;

/** Largest control message accepted on the data channel, in bytes. */
export const MAX_CONTROL_MESSAGE_BYTES = 16 * 1024;

/**
 * Parse and validate one JSON text message from a data channel against `schema`; never throws. The error
 * names every invalid field (`path: message`), ready to send back in an `error` event.
 */
export function parseJsonMessage<T>(
  schema: z.ZodType<T>,
  raw: unknown,
  maxBytes: number,
): { ok: true; message: T } | { ok: false; error: string } {
  if (typeof raw !== "string") return { ok: false, error: "control messages must be JSON text" };
  if (raw.length > maxBytes) return { ok: false, error: "control message too large" };
  let json: unknown;
  try {
    json = parseClientJson(raw);
  } catch (e) {
    if (e instanceof ForbiddenKeyError) return { ok: false, error: e.message };
    return { ok: false, error: "control message is not valid JSON" };
  }
  const r = schema.safeParse(json);
  if (!r.success) {
    return {
      ok: false,
      error: r.error.issues.map((i) => `${i.path.join(".") || "message"}: ${i.message}`).join("; "),
    };
  }
  return { ok: true, message: r.data };
}

/** Parse and validate one inbound control message; never throws. */
export function parseControlMessage(
  raw: unknown,
): { ok: true; message: ControlMessage } | { ok: false; error: string } {
  return parseJsonMessage(ControlMessage, raw, MAX_CONTROL_MESSAGE_BYTES);
}
