/**
 * `GET /v1/listen`: streaming recognition over a WebSocket. Shared by the edge (auth, routing, relay) and the
 * origin (the session). Frames:
 *
 * - client → server, binary: PCM16 little-endian mono at `sample_rate` (query), or a WAV header first (then
 *   PCM16 mono data; the header's rate wins and must match `sample_rate` when both are given);
 * - client → server, text: one JSON control message (protocol/session_messages.ts ControlMessage);
 * - server → client, text: one JSON ServerEvent (the same events as a WebRTC session's `events` channel);
 * - server → client, binary: synthesized speech (`say`, echo mode) as PCM16 mono at the stream's rate.
 *
 * Every server-side close carries one of the codes below and a reason a person can read.
 */

export const LISTEN_PATH = "/v1/listen";
/** Edge → origin: the same stream, signed like every internal call (internal_auth.ts) over GET + path+query. */
export const INTERNAL_LISTEN_PATH = "/internal/listen";

/** The subprotocol the server selects; browsers offer it together with `bearer.<token>`. */
export const LISTEN_SUBPROTOCOL = "parley.listen.v1";
/** `Sec-WebSocket-Protocol` entry carrying a credential (browsers cannot set Authorization on a WebSocket). */
export const BEARER_SUBPROTOCOL_PREFIX = "bearer.";

export const MIN_SAMPLE_RATE = 8_000;
export const MAX_SAMPLE_RATE = 48_000;
/** Largest binary frame, bytes. */
export const MAX_FRAME_BYTES = 64 * 1024;
/** Longest audio in one frame, ms. */
export const MAX_FRAME_MS = 1_000;
/** Audio may run ahead of real time by this factor … */
export const MAX_REALTIME_FACTOR = 2;
/** … plus this much (a client may start with a buffered burst). */
export const REALTIME_ALLOWANCE_MS = 5_000;
/** Client frames the edge holds while the origin session starts. */
export const MAX_PENDING_BYTES = 1024 * 1024;
/** Server → client bytes queued on a slow client before partial transcripts are dropped. */
export const SLOW_CLIENT_SOFT_BYTES = 256 * 1024;
/** … and before the stream is closed (1008). */
export const SLOW_CLIENT_HARD_BYTES = 4 * 1024 * 1024;
/** Synthesized audio is sent in frames of this length. */
export const OUTBOUND_FRAME_MS = 100;

export const LISTEN_CLOSE = {
  /** The session ended (bye sent first with its reason). */
  normal: 1000,
  /** The origin is shutting down or recycling. */
  goingAway: 1001,
  /** A text frame that is not a JSON control message (audio must be binary), or a WAV that is not PCM16 mono. */
  unsupportedData: 1003,
  /** Malformed payload: a bad WAV header, an odd number of PCM bytes, audio before the sample rate is known. */
  invalidPayload: 1007,
  /** Policy: audio faster than real time, a client too slow to read its events, too much before start. */
  policy: 1008,
  /** A frame larger than 64 KiB or longer than 1 s of audio. */
  tooBig: 1009,
  /** Internal error: the origin connection was lost, or the session failed on our side (never the client's fault). */
  internal: 1011,
  /** No origin can take a session now: retry later. */
  tryAgain: 1013,
  /** Bad query: sample rate, options, resume parameters. */
  badRequest: 4400,
  /** Missing, invalid, expired or revoked credential. */
  unauthorized: 4401,
  /** The credential lacks the `sessions` scope or is limited to another session. */
  forbidden: 4403,
  /** Resume: no such session. */
  notFound: 4404,
  /** Resume: the session is closed or its origin is gone. */
  conflict: 4409,
  /** Too many live sessions for the tenant or the key, or the API key's rate limit. */
  limitExceeded: 4429,
} as const;
export type ListenCloseCode = typeof LISTEN_CLOSE[keyof typeof LISTEN_CLOSE];

/** Close reasons are at most 123 bytes (RFC 6455 §5.5): cut longer ones on a character boundary. */
export function closeReason(text: string): string {
  const enc = new TextEncoder();
  if (enc.encode(text).length <= 123) return text;
  let out = text;
  while (enc.encode(out + "…").length > 123) out = out.slice(0, -1);
  return out + "…";
}

/** Thrown by the stream's input checks: the stream closes with `code` and `reason`. */
export class ListenViolation extends Error {
  constructor(readonly code: ListenCloseCode, message: string) {
    super(message);
    this.name = "ListenViolation";
  }
}

/** Parse `sample_rate` from the query: undefined when absent, a violation when outside 8000–48000. */
export function parseSampleRate(raw: string | null | undefined): number | undefined {
  if (raw === null || raw === undefined || raw === "") return undefined;
  if (!/^\d{1,6}$/.test(raw)) {
    throw new ListenViolation(
      LISTEN_CLOSE.badRequest,
      `sample_rate must be an integer, got ${JSON.stringify(raw.slice(0, 20))}`,
    );
  }
  const n = Number(raw);
  if (n < MIN_SAMPLE_RATE || n > MAX_SAMPLE_RATE) {
    throw new ListenViolation(
      LISTEN_CLOSE.badRequest,
      `sample_rate must be ${MIN_SAMPLE_RATE}–${MAX_SAMPLE_RATE} Hz, got ${n}`,
    );
  }
  return n;
}

/** Query parameters that are not session options. */
export const LISTEN_QUERY_KEYS = ["sample_rate", "token", "resume", "last_seq"] as const;

/** Session options from the query string (`?mode=echo&partials=false&vad_silence_ms=500`). */
export function listenOptionsFromQuery(q: URLSearchParams): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  for (const [k, v] of q) {
    if ((LISTEN_QUERY_KEYS as readonly string[]).includes(k)) continue;
    if (v === "true" || v === "false") o[k] = v === "true";
    else if (/^\d{1,9}$/.test(v)) o[k] = Number(v);
    else o[k] = v;
  }
  return o;
}

/** Edge → origin query: what the edge decided, signed. */
export interface InternalListenParams {
  session_id: string;
  tenant_id: string;
  sample_rate?: number;
  /** JSON of the validated SessionOptions. */
  options: string;
  resume_after_seq?: number;
}

export function internalListenQuery(p: InternalListenParams): string {
  const q = new URLSearchParams({ session_id: p.session_id, tenant_id: p.tenant_id, options: p.options });
  if (p.sample_rate !== undefined) q.set("sample_rate", String(p.sample_rate));
  if (p.resume_after_seq !== undefined) q.set("resume_after_seq", String(p.resume_after_seq));
  return `${INTERNAL_LISTEN_PATH}?${q}`;
}

/** Is this server event a partial transcript (the only kind a slow client may miss)? */
export function isPartialTranscript(json: string): boolean {
  // Events are serialized by the origin with `type` first and `status` among the first fields; a cheap check
  // avoids parsing every event on the relay.
  return json.startsWith('{"type":"transcript"') && json.includes('"status":"partial"');
}
