/**
 * The OpenAPI 3.1 document of Parley's whole public API, served at GET /openapi.json, and an interactive UI
 * (Swagger UI from the `swagger-ui-dist` npm package, served from node_modules: no CDN) at GET /docs.
 *
 * Request parameters and bodies come from the same zod schemas the routes validate with (`z.toJSONSchema`), so
 * the document cannot drift from validation; responses are described by zod schemas too (history's are the
 * ones its tests parse real responses with). tests/openapi_test.ts checks that every /v1 route registered on
 * the edge app is documented.
 */
import type { VoiceList } from "../protocol/voices.ts";
import { z } from "zod";
import { SCOPES } from "../protocol/api.ts";
import { CLOSE_REASONS, SayRequest, SESSION_STATES, SessionOptions } from "../protocol/session_messages.ts";
import { CreateSipCredential, CreateSipNumber, SipCredential, SipNumber } from "../protocol/sip.ts";
import type { ErrorCode } from "../lib/errors.ts";
import type { EdgeApp, EdgeContext } from "./context.ts";
import { JsonOffer } from "./routes/sessions.ts";
import { TokenRequest } from "./routes/tokens.ts";
import { CreateKey } from "./routes/admin.ts";
import { CreateTtsBatch, CreateTtsJob, ListTtsJobsQuery } from "./routes/tts.ts";
import {
  TTS_FORMATS,
  TTS_JOB_ENGINES,
  TTS_JOB_STATUSES,
  TTS_PRIORITIES,
  type TtsBatchCreated,
  type TtsJob,
  type TtsJobCreated,
  type TtsJobList,
} from "../protocol/tts.ts";
import { EventPage, SearchResult, SessionList, SessionSummary, Transcript } from "../protocol/history.ts";
import { openAiOperations } from "./openapi_openai.ts";
import { EventsQuery, ListSessionsQuery, SearchQuery, TranscriptQuery } from "./routes/history.ts";
import { ListRoomsQuery, RoomEventsQuery } from "./routes/rooms.ts";
import { TrackUploadQuery } from "./routes/tracks.ts";
import { CreateRoomRequest, ListenerQuery, RoomOptionsInput } from "../protocol/rooms.ts";

type JsonSchema = Record<string, unknown>;
type Schemaish = z.ZodType | JsonSchema;

interface ResponseSpec {
  description: string;
  content?: Record<string, Schemaish>;
  headers?: Record<string, { description: string; schema?: JsonSchema }>;
}

/** One documented operation. `scope`: required scope; "key" = any API key; null = no authentication. */
export interface Operation {
  method: "get" | "post" | "delete" | "patch" | "put";
  path: string;
  tag: string;
  summary: string;
  description?: string;
  scope: (typeof SCOPES)[number] | "key" | "any" | null;
  query?: z.ZodObject;
  /** Extra query parameters described directly (e.g. the SDP variant's options). */
  queryParams?: Array<{ name: string; schema: JsonSchema; description?: string; required?: boolean }>;
  pathParams?: Record<string, { schema: JsonSchema; description: string }>;
  headerParams?: Array<{ name: string; schema: JsonSchema; description: string }>;
  body?: { required: boolean; content: Record<string, Schemaish>; description?: string };
  responses: Record<string, ResponseSpec>;
  /** Error statuses this operation can answer besides the common 401/403/429 of authenticated routes. */
  errors?: number[];
}

// ------------------------------------------------------------------------------------------------ schemas

const ERROR_CODES: ErrorCode[] = [
  "bad_request",
  "invalid_json",
  "validation_failed",
  "unknown_voice",
  "invalid_ssml",
  "unauthorized",
  "forbidden",
  "not_found",
  "method_not_allowed",
  "conflict",
  "payload_too_large",
  "unsupported_media_type",
  "rate_limited",
  "limit_exceeded",
  "not_implemented",
  "no_origin_available",
  "origin_error",
  "unavailable",
  "internal",
];

export const ErrorBody = z.object({
  error: z.object({ code: z.enum(ERROR_CODES as [ErrorCode, ...ErrorCode[]]), message: z.string() }),
});

const TokenResponse = z.object({
  token: z.string().describe("JWT (HS256) for `Authorization: Bearer`"),
  expires_at: z.string(),
  scopes: z.array(z.enum(SCOPES)),
  session_id: z.uuid().nullable(),
  room_id: z.uuid().nullable(),
  link: z.string().optional().describe("room viewer tokens: the shareable page link `/rooms/{id}#token=…`"),
});

const RoomLiveSchema = z.object({
  listeners: z.number().int(),
  publisher: z.uuid().nullable(),
  idle: z.boolean(),
  default_source: z.string(),
  last_seq: z.number().int(),
  switches: z.number().int(),
  idle_ms: z.number().int(),
});
const RoomSchema = z.object({
  id: z.uuid(),
  name: z.string(),
  options: RoomOptionsInput,
  node_id: z.string().nullable().describe("origin holding the room (set by its first publisher or listener)"),
  publisher_session_id: z.uuid().nullable(),
  last_seq: z.number().int(),
  created_at: z.string(),
  live: RoomLiveSchema.nullable().optional().describe("GET /v1/rooms/{id}: state on its origin, if placed"),
  links: z.object({ self: z.string(), listeners: z.string(), events: z.string(), page: z.string() }),
});
const TrackSchema = z.object({
  id: z.uuid(),
  name: z.string(),
  duration_ms: z.number().int(),
  size_bytes: z.number().int(),
  sample_rate: z.literal(48000),
  channels: z.literal(1),
  bits_per_sample: z.literal(16),
  source: z.string().describe("the uploaded format before conversion"),
  created_at: z.string(),
});

const CreatedSession = z.object({
  id: z.uuid(),
  sdp: z.string().describe("SDP answer (all host candidates; no trickle)"),
  node_id: z.string(),
  location: z.string(),
});

const KeyInfo = z.object({
  id: z.uuid(),
  name: z.string(),
  prefix: z.string(),
  scopes: z.array(z.enum(SCOPES)),
  max_sessions: z.number().int().nullable(),
  created_at: z.string(),
  revoked_at: z.string().nullable(),
});

const KeyCreated = z.object({
  id: z.uuid(),
  name: z.string(),
  scopes: z.array(z.enum(SCOPES)),
  prefix: z.string(),
  key: z.string().describe("the secret; shown only in this response"),
});

const EngineDescriptorSchema = z.object({
  kind: z.enum(["asr", "tts"]),
  name: z.string(),
  model: z.string(),
  understands: z.string().describe('e.g. "human English", "synthetic English only"'),
  active: z.boolean().describe("the engine this origin runs"),
  available: z.boolean().describe("its library and model are present on this origin"),
  how_to_enable: z.string(),
});

const NodeInfo = z.object({
  id: z.string(),
  url: z.string(),
  capacity: z.number().int(),
  load: z.number().int(),
  draining: z.boolean(),
  version: z.string(),
  engines: z.array(EngineDescriptorSchema),
  started_at: z.string(),
  heartbeat_at: z.string(),
  alive: z.boolean(),
});

const TtsJobLinks = z.object({ self: z.string(), audio: z.string(), events: z.string() });
const TtsJobSchema = z.object({
  id: z.uuid(),
  batch_id: z.uuid().nullable(),
  status: z.enum(TTS_JOB_STATUSES),
  voice: z.string(),
  engine: z.enum(TTS_JOB_ENGINES),
  speed: z.number(),
  ssml: z.boolean(),
  format: z.enum(TTS_FORMATS),
  priority: z.enum(TTS_PRIORITIES),
  sample_rate: z.number().int(),
  progress: z.object({
    chunks_done: z.number().int(),
    chunks_total: z.number().int(),
    chars_done: z.number().int(),
    chars_total: z.number().int(),
    audio_seconds: z.number(),
  }),
  timings: z.object({
    queued_at: z.string(),
    started_at: z.string().nullable(),
    first_audio_at: z.string().nullable(),
    finished_at: z.string().nullable(),
  }),
  error: z.string().nullable(),
  links: TtsJobLinks,
});
const TtsJobCreatedSchema = z.object({
  id: z.uuid(),
  status: z.enum(TTS_JOB_STATUSES),
  chunks_total: z.number().int(),
  links: TtsJobLinks,
  created: z.boolean().describe(
    "false when an Idempotency-Key matched an earlier submit (same job returned)",
  ),
});
const TtsBatchCreatedSchema = z.object({ batch_id: z.uuid(), jobs: z.array(TtsJobCreatedSchema) });
const TtsJobListSchema = z.object({
  jobs: z.array(TtsJobSchema),
  next_cursor: z.string().nullable().describe("pass as `cursor` for the next page; null on the last page"),
});

const VoiceInfoSchema = z.object({
  id: z.string().describe("`<engine>:<voice>`: what `voice` accepts anywhere"),
  engine: z.enum(TTS_JOB_ENGINES),
  voice: z.string().describe("the engine's own id (a bare id is accepted too)"),
  languages: z.array(z.string()),
  gender: z.enum(["male", "female"]).nullable(),
  description: z.string(),
  sample_rate: z.number().int().describe("the engine's native rate (sessions and jobs resample)"),
  timings: z.enum(["exact", "estimated"]).describe("exact: word/phoneme times from the engine itself"),
  openai_aliases: z.array(z.string()).describe("OpenAI voice names (`alloy` …) that select this voice"),
});
const VoiceListSchema = z.object({
  object: z.literal("list"),
  default: z.string().describe("the default voice's id"),
  data: z.array(VoiceInfoSchema),
});

// The documented TTS response schemas must describe exactly the wire types in protocol/tts.ts.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const _ttsSchemasMatchProtocol: [
  Same<z.infer<typeof TtsJobSchema>, TtsJob>,
  Same<z.infer<typeof TtsJobCreatedSchema>, TtsJobCreated>,
  Same<z.infer<typeof TtsBatchCreatedSchema>, TtsBatchCreated>,
  Same<z.infer<typeof TtsJobListSchema>, TtsJobList>,
  Same<z.infer<typeof VoiceListSchema>, VoiceList>,
] = [true, true, true, true, true];

/**
 * Named schemas (components.schemas), referenced with $ref wherever the same zod object is a whole body.
 * Request bodies are described as accepted (`input`: defaults optional), responses as sent (`output`).
 */
const NAMED: Record<string, { schema: z.ZodType; io: "input" | "output" }> = {
  Error: { schema: ErrorBody, io: "output" },
  SessionOptions: { schema: SessionOptions, io: "input" },
  JsonOffer: { schema: JsonOffer, io: "input" },
  CreatedSession: { schema: CreatedSession, io: "output" },
  SessionSummary: { schema: SessionSummary, io: "output" },
  SessionList: { schema: SessionList, io: "output" },
  Transcript: { schema: Transcript, io: "output" },
  EventPage: { schema: EventPage, io: "output" },
  SearchResult: { schema: SearchResult, io: "output" },
  TokenRequest: { schema: TokenRequest, io: "input" },
  TokenResponse: { schema: TokenResponse, io: "output" },
  CreateKey: { schema: CreateKey, io: "input" },
  KeyCreated: { schema: KeyCreated, io: "output" },
  KeyInfo: { schema: KeyInfo, io: "output" },
  NodeInfo: { schema: NodeInfo, io: "output" },
  CreateTtsJob: { schema: CreateTtsJob, io: "input" },
  CreateTtsBatch: { schema: CreateTtsBatch, io: "input" },
  TtsJob: { schema: TtsJobSchema, io: "output" },
  TtsJobCreated: { schema: TtsJobCreatedSchema, io: "output" },
  TtsBatchCreated: { schema: TtsBatchCreatedSchema, io: "output" },
  TtsJobList: { schema: TtsJobListSchema, io: "output" },
};

/** Add named schemas (other route groups' bodies) so they appear once in components. */
export function registerSchemas(named: Record<string, { schema: z.ZodType; io: "input" | "output" }>): void {
  Object.assign(NAMED, named);
}

// ------------------------------------------------------------------------------------------------ operations

const uuidParam = (what: string) => ({
  id: { schema: { type: "string", format: "uuid" }, description: what },
});

const sessionOptionParams = (): Operation["queryParams"] => {
  const js = z.toJSONSchema(SessionOptions, { io: "input" }) as JsonSchema & {
    properties: Record<string, JsonSchema>;
  };
  return [
    ...Object.entries(js.properties).map(([name, schema]) => ({
      name,
      schema,
      description:
        `session option \`${name}\` (application/sdp variant only; JSON offers carry options in the body)`,
    })),
    {
      name: "resume",
      schema: { type: "string", format: "uuid" },
      description: "resume this session (application/sdp variant) after a lost connection",
    },
    {
      name: "last_seq",
      schema: { type: "integer", minimum: 0 },
      description: "with resume: the last event seq the client received",
    },
  ];
};

/** Operations of the core edge routes, history and docs. TTS operations are added by `ttsOperations`. */
export function coreOperations(): Operation[] {
  return [
    {
      method: "get",
      path: "/healthz",
      tag: "ops",
      summary: "Liveness",
      scope: null,
      responses: {
        "200": { description: "the process is up", content: { "application/json": { type: "object" } } },
      },
    },
    {
      method: "get",
      path: "/readyz",
      tag: "ops",
      summary: "Readiness (database reachable, migrations applied; all-in-one: its origin serves sessions)",
      scope: null,
      responses: {
        "200": { description: "ready", content: { "application/json": { type: "object" } } },
        "503": { description: "not ready", content: { "application/json": { type: "object" } } },
      },
    },
    {
      method: "get",
      path: "/metrics",
      tag: "ops",
      summary: "Prometheus metrics (text exposition format 0.0.4)",
      scope: null,
      responses: { "200": { description: "metrics", content: { "text/plain": { type: "string" } } } },
    },
    {
      method: "get",
      path: "/openapi.json",
      tag: "ops",
      summary: "This OpenAPI document",
      scope: null,
      responses: {
        "200": { description: "OpenAPI 3.1", content: { "application/json": { type: "object" } } },
      },
    },
    {
      method: "get",
      path: "/docs",
      tag: "ops",
      summary: "Interactive API documentation (Swagger UI, served locally)",
      scope: null,
      responses: { "200": { description: "HTML page", content: { "text/html": { type: "string" } } } },
    },
    {
      method: "post",
      path: "/v1/tokens",
      tag: "tokens",
      summary: "Mint a browser token",
      description:
        "An API key mints a short-lived JWT (≤ 1 h) narrowed to some of its scopes and optionally one " +
        "session. Tokens cannot mint tokens and never carry `admin`.",
      scope: "key",
      body: { required: true, content: { "application/json": TokenRequest } },
      responses: { "201": { description: "token", content: { "application/json": TokenResponse } } },
      errors: [400, 413, 415],
    },
    {
      method: "post",
      path: "/v1/sessions",
      tag: "sessions",
      summary: "Create (or resume) a session: WHIP offer → answer",
      description:
        "Send the SDP offer as `application/sdp` (options as query parameters; the answer comes back " +
        "as `application/sdp` with `Location`) or as `application/json` `{sdp, options, resume?}`.",
      scope: "sessions",
      queryParams: sessionOptionParams(),
      body: {
        required: true,
        content: { "application/sdp": { type: "string" }, "application/json": JsonOffer },
      },
      responses: {
        "201": {
          description: "session created; answer in the body",
          headers: { Location: { description: "/v1/sessions/{id}", schema: { type: "string" } } },
          content: { "application/sdp": { type: "string" }, "application/json": CreatedSession },
        },
      },
      errors: [400, 409, 413, 415, 502, 503],
    },
    {
      method: "get",
      path: "/v1/listen",
      tag: "sessions",
      summary: "Streaming recognition over a WebSocket (upgrade)",
      description: [
        "A live session carried by a WebSocket instead of WebRTC (`Upgrade: websocket`; a plain GET gets " +
        "`426`). The client sends **binary** frames of PCM16 little-endian mono at `sample_rate` (8000–48000), " +
        "or a 44-byte WAV header first (PCM16 mono; its rate is used), and **text** frames carrying the control " +
        "messages of a WebRTC session's `control` channel (`say`, `mute`, `set_options`, `ping`, `bye`). The " +
        "server sends the events of the `events` channel as text frames (`state`, `transcript` with `seq`, " +
        "`utterance`, `telop`, `error`, `pong`, `bye`) and `say`/echo speech as binary PCM16 at the stream's " +
        "rate. Events are persisted before they are sent; reconnect with `?resume=<id>&last_seq=N` to get " +
        "the missed ones, then live ones.",
        "",
        "Auth: `Authorization: Bearer`, or for browsers `?token=<browser token>` or the subprotocol list " +
        "`['parley.listen.v1', 'bearer.<token>']` (the server selects `parley.listen.v1`).",
        "",
        "Limits: frames ≤ 64 KiB and ≤ 1 s of audio; audio at most 2× real time (plus 5 s); partial " +
        "transcripts are dropped for a client with > 256 KiB unread, and the stream closes past 4 MiB.",
        "",
        "Close codes (with a reason): 1000 session ended (after `bye`), 1001 origin shutdown or resumed " +
        "elsewhere, 1003 text that is not a JSON control message / WAV not PCM16 mono 8–48 kHz, 1007 bad WAV " +
        "header / odd PCM length / no rate, 1008 faster than 2× real time / client too slow, 1009 frame too " +
        "big, 1011 origin lost or internal error, 1013 no origin (retry), 4400 bad query, 4401 bad credential, 4403 scope, " +
        "4404 resume: unknown session, 4409 resume: closed session, 4429 session or rate limit.",
        "",
        "Example: `websocat -b -H 'Authorization: Bearer pk_…' " +
        "'ws://localhost:8080/v1/listen?sample_rate=16000' < audio.pcm`",
      ].join("\n"),
      scope: "sessions",
      queryParams: [
        {
          name: "sample_rate",
          schema: { type: "integer", minimum: 8000, maximum: 48000 },
          description: "rate of the PCM16 frames; optional when the first frame is a WAV header",
        },
        { name: "token", schema: { type: "string" }, description: "browser token (instead of the header)" },
        ...(sessionOptionParams() ?? []).map((p) =>
          p.name === "resume"
            ? { ...p, description: "resume this WebSocket session after a lost connection" }
            : p.name === "last_seq"
            ? p
            : { ...p, description: `session option \`${p.name}\`` }
        ),
      ],
      headerParams: [
        {
          name: "Sec-WebSocket-Protocol",
          schema: { type: "string" },
          description: "`parley.listen.v1, bearer.<browser token>` (browsers cannot set Authorization)",
        },
      ],
      responses: {
        "101": { description: "switching protocols: the stream (see the close codes above)" },
        "426": { description: "not a WebSocket upgrade", content: { "application/json": ErrorBody } },
      },
    },
    {
      method: "get",
      path: "/v1/sessions",
      tag: "history",
      summary: "List the tenant's sessions, newest first",
      description:
        "Keyset pagination: pass `next_cursor` as `cursor`. A session is on exactly one page even while " +
        "new sessions are created.",
      scope: "transcripts:read",
      query: ListSessionsQuery,
      responses: { "200": { description: "one page", content: { "application/json": SessionList } } },
      errors: [400],
    },
    {
      method: "get",
      path: "/v1/sessions/{id}",
      tag: "sessions",
      summary: "Session state",
      scope: "sessions",
      pathParams: uuidParam("session id"),
      responses: { "200": { description: "the session", content: { "application/json": SessionSummary } } },
      errors: [404],
    },
    {
      method: "delete",
      path: "/v1/sessions/{id}",
      tag: "sessions",
      summary: "End a session; with erase=true also erase its transcript and events",
      description:
        "Idempotent. On a live session it ends it (`client_hangup`); on an ended one it does nothing, unless " +
        "`erase=true`: then the session's transcript segments and event log are deleted (right to erasure; a " +
        "live session is ended first). The session row (id, state, timestamps) remains. Erasure is explicit so " +
        "that a retried DELETE can never destroy a transcript.",
      scope: "sessions",
      pathParams: uuidParam("session id"),
      queryParams: [{ name: "erase", schema: { type: "string", enum: ["true", "false"] } }],
      responses: { "204": { description: "ended (or erased)" } },
      errors: [404, 502],
    },
    {
      method: "post",
      path: "/v1/sessions/{id}/say",
      tag: "sessions",
      summary: "Speak text on a live session (WebRTC or phone call)",
      description:
        "Routed to the session's origin, which synthesizes the text with the session's voice (or `voice`) and " +
        "plays it (to a caller: as G.711 on the call). Accepted once queued; playout is reported by `telop` " +
        "and `utterance` events on the session's timeline. Barge-in applies as for the `say` control message.",
      scope: "sessions",
      pathParams: uuidParam("session id"),
      body: { required: true, content: { "application/json": SayRequest } },
      responses: {
        "202": {
          description: "queued",
          content: { "application/json": z.object({ id: z.uuid(), accepted: z.literal(true) }) },
        },
      },
      errors: [400, 404, 409, 413, 415, 502],
    },
    {
      method: "patch",
      path: "/v1/sessions/{id}",
      tag: "sessions",
      summary: "Not supported (no trickle ICE, no ICE restart)",
      scope: "sessions",
      pathParams: uuidParam("session id"),
      responses: { "405": { description: "always", content: { "application/json": ErrorBody } } },
    },
    {
      method: "get",
      path: "/v1/sessions/{id}/transcript",
      tag: "history",
      summary: "A session's transcript (confirmed segments in seq order)",
      description:
        "Format by `?format=` or `Accept`: JSON (paged by `after_seq`/`limit`), plain text, WebVTT " +
        "or SRT captions (times are session time: ms since the session became active). For exports cut short by " +
        "`limit`, the `Parley-Next-After-Seq` header gives where to continue. JSON segments carry `words` " +
        "(session-time word timings with confidences) when the engine aligned them; `granularity=word` makes " +
        "WebVTT/SRT cues per word.",
      scope: "transcripts:read",
      pathParams: uuidParam("session id"),
      query: TranscriptQuery,
      responses: {
        "200": {
          description: "the transcript",
          headers: {
            "Parley-Next-After-Seq": { description: "text/vtt/srt only: more segments follow this seq" },
          },
          content: {
            "application/json": Transcript,
            "text/plain": { type: "string" },
            "text/vtt": { type: "string" },
            "application/x-subrip": { type: "string" },
          },
        },
      },
      errors: [400, 404],
    },
    {
      method: "get",
      path: "/v1/sessions/{id}/events",
      tag: "history",
      summary: "A session's persisted event timeline (replay); `follow=1` for a live SSE stream",
      description:
        "JSON pages of events as they were sent on the `events` data channel, with their persistence " +
        "time. With `follow=1` the response is `text/event-stream`: `id` = seq, `event` = type, `data` = the " +
        "event; it replays from `after_seq` (or `Last-Event-ID`) and continues live with no gap and no " +
        "duplicate, then sends `event: end` once the session has ended.",
      scope: "transcripts:read",
      pathParams: uuidParam("session id"),
      query: EventsQuery,
      headerParams: [{
        name: "Last-Event-ID",
        schema: { type: "string" },
        description: "SSE reconnect: continue after this seq (wins over after_seq when greater)",
      }],
      responses: {
        "200": {
          description: "events",
          content: { "application/json": EventPage, "text/event-stream": { type: "string" } },
        },
      },
      errors: [400, 404],
    },
    {
      method: "get",
      path: "/v1/transcripts/search",
      tag: "history",
      summary: "Full-text search over the tenant's confirmed transcript segments",
      description:
        "Ranked (ts_rank) among the newest 1,000 matches (every match when there are fewer), with " +
        "highlighted snippets and links to the session and seq. `q` uses web search syntax " +
        "(websearch_to_tsquery, English): any text is accepted.",
      scope: "transcripts:read",
      query: SearchQuery,
      responses: {
        "200": { description: "results, best first", content: { "application/json": SearchResult } },
      },
      errors: [400],
    },
    {
      method: "get",
      path: "/v1/engines",
      tag: "sessions",
      summary: "Speech engines of the live origins: which recognizer is active, what it understands",
      description: "Each origin lists its recognizers (sphinx: human English; ctc: synthetic English only; " +
        "whisper) and synthesizers, the active one marked, with how to enable the others.",
      scope: "sessions",
      responses: {
        "200": {
          description: "engines per live origin",
          content: {
            "application/json": z.object({
              origins: z.array(z.object({ node_id: z.string(), engines: z.array(EngineDescriptorSchema) })),
            }),
          },
        },
      },
    },
    ...ttsOperations(),
    ...openAiOperations(),
    ...roomOperations(),
    {
      method: "get",
      path: "/v1/keys",
      tag: "keys",
      summary: "List the tenant's API keys (no secrets)",
      scope: "admin",
      responses: {
        "200": { description: "keys", content: { "application/json": z.object({ keys: z.array(KeyInfo) }) } },
      },
    },
    {
      method: "post",
      path: "/v1/keys",
      tag: "keys",
      summary: "Create an API key (the secret is shown once)",
      scope: "admin",
      body: { required: true, content: { "application/json": CreateKey } },
      responses: { "201": { description: "created", content: { "application/json": KeyCreated } } },
      errors: [400, 413, 415],
    },
    {
      method: "delete",
      path: "/v1/keys/{id}",
      tag: "keys",
      summary: "Revoke an API key (its browser tokens die with it)",
      scope: "admin",
      pathParams: uuidParam("key id"),
      responses: { "204": { description: "revoked" } },
      errors: [404],
    },
    {
      method: "get",
      path: "/v1/sip/credentials",
      tag: "phone",
      summary: "List the tenant's SIP digest credentials (no secrets)",
      scope: "admin",
      responses: {
        "200": {
          description: "credentials",
          content: { "application/json": z.object({ credentials: z.array(SipCredential) }) },
        },
      },
    },
    {
      method: "post",
      path: "/v1/sip/credentials",
      tag: "phone",
      summary: "Create a SIP digest credential (stored as MD5 and SHA-256 HA1 hashes under SIP_REALM)",
      description:
        "Phones that are not on the trunk allow-list authenticate with it (RFC 3261 digest, RFC 8760 " +
        "SHA-256). A username is unique within the realm across tenants: 409 if taken.",
      scope: "admin",
      body: { required: true, content: { "application/json": CreateSipCredential } },
      responses: { "201": { description: "created", content: { "application/json": SipCredential } } },
      errors: [400, 409, 413, 415],
    },
    {
      method: "delete",
      path: "/v1/sip/credentials/{id}",
      tag: "phone",
      summary: "Delete a SIP credential",
      scope: "admin",
      pathParams: uuidParam("credential id"),
      responses: { "204": { description: "deleted" } },
      errors: [404],
    },
    {
      method: "get",
      path: "/v1/numbers",
      tag: "phone",
      summary: "List the tenant's numbers (extensions callers dial)",
      scope: "admin",
      responses: {
        "200": {
          description: "numbers",
          content: { "application/json": z.object({ numbers: z.array(SipNumber) }) },
        },
      },
    },
    {
      method: "post",
      path: "/v1/numbers",
      tag: "phone",
      summary: "Create a number: calls to this Request-URI user become sessions with these options",
      description:
        "A number is unique across tenants (409 if taken). `greeting` is spoken on answer; `room` (or " +
        "`options.room`), a room of the tenant (404 otherwise), is the room each call publishes into. Calls " +
        "count towards the tenant's session limit: over it a call gets 486 Busy Here.",
      scope: "admin",
      body: { required: true, content: { "application/json": CreateSipNumber } },
      responses: { "201": { description: "created", content: { "application/json": SipNumber } } },
      errors: [400, 404, 409, 413, 415],
    },
    {
      method: "delete",
      path: "/v1/numbers/{id}",
      tag: "phone",
      summary: "Delete a number (calls to it then get 404)",
      scope: "admin",
      pathParams: uuidParam("number id"),
      responses: { "204": { description: "deleted" } },
      errors: [404],
    },
    {
      method: "get",
      path: "/v1/voices",
      tag: "tts",
      summary: "Every synthesis voice, by engine, with language, output rate, timing kind and OpenAI aliases",
      description: [
        "Voice names for sessions, `say`, TTS jobs and batches and `POST /v1/audio/speech`: `<engine>:<voice>`",
        "(e.g. `flite:rms`, `espeak:de`), a bare id looked up in the default engine first, or an OpenAI name",
        "(`alloy`, `nova` …: `openai_aliases` says which voice each one selects). OpenAI's list shape",
        "(`object`, `data`). No authentication (a static list that names no tenant data).",
        "```sh",
        "curl $PARLEY/v1/voices",
        "```",
        "```js",
        'const voices = await client.get("/voices");',
        "```",
      ].join("\n"),
      scope: null,
      responses: {
        "200": { description: "the voice catalogue", content: { "application/json": VoiceListSchema } },
      },
    },
    {
      method: "get",
      path: "/v1/nodes",
      tag: "keys",
      summary: "The origin node registry",
      scope: "admin",
      responses: {
        "200": {
          description: "nodes",
          content: { "application/json": z.object({ nodes: z.array(NodeInfo) }) },
        },
      },
    },
  ];
}

const idempotencyHeader = {
  name: "Idempotency-Key",
  schema: { type: "string", pattern: "^[\\x21-\\x7e]{1,200}$" },
  description: "a retry with the same key (same tenant) returns the same job(s) instead of new ones",
};

function roomOperations(): Operation[] {
  const roomId = uuidParam("room id");
  const json = (schema: Schemaish) => ({ "application/json": schema });
  return [
    {
      method: "post",
      path: "/v1/rooms",
      tag: "rooms",
      summary: "Create a room (one publisher session → many WHEP listeners and SSE caption viewers)",
      scope: "sessions",
      body: { required: true, content: json(CreateRoomRequest) },
      responses: { "201": { description: "the room", content: json(RoomSchema) } },
      errors: [400, 415],
    },
    {
      method: "get",
      path: "/v1/rooms",
      tag: "rooms",
      summary: "The tenant's rooms, newest first",
      scope: "sessions",
      query: ListRoomsQuery,
      responses: { "200": { description: "rooms", content: json(z.object({ rooms: z.array(RoomSchema) })) } },
    },
    {
      method: "get",
      path: "/v1/rooms/{id}",
      tag: "rooms",
      summary: "A room, with its live state (listeners, publisher, idle) from its origin",
      scope: "rooms:view",
      pathParams: roomId,
      responses: { "200": { description: "the room", content: json(RoomSchema) } },
      errors: [404],
    },
    {
      method: "delete",
      path: "/v1/rooms/{id}",
      tag: "rooms",
      summary: "Delete a room: its listeners end; its events stay for replay",
      scope: "sessions",
      pathParams: roomId,
      responses: { "204": { description: "deleted" } },
      errors: [404],
    },
    {
      method: "post",
      path: "/v1/rooms/{id}/listeners",
      tag: "rooms",
      summary: "Listen (WHEP): a recvonly audio offer with an `events` data channel → 201 SDP answer",
      description:
        "The listener is placed on the room's origin. The `events` channel carries captions, telop " +
        'and room state with the room\'s seq, and `source` events; send `{"type":"select","source":…}` ' +
        "on it to switch. 429 (Retry-After) past the room's max_listeners.",
      scope: "rooms:view",
      pathParams: roomId,
      query: ListenerQuery,
      body: { required: true, content: { "application/sdp": { type: "string" } } },
      responses: {
        "201": {
          description: "SDP answer",
          headers: { Location: { description: "/v1/rooms/{id}/listeners/{listener_id}" } },
          content: { "application/sdp": { type: "string" } },
        },
      },
      errors: [400, 404, 415, 429, 503],
    },
    {
      method: "delete",
      path: "/v1/rooms/{id}/listeners/{lid}",
      tag: "rooms",
      summary: "End a listener",
      scope: "rooms:view",
      pathParams: {
        ...roomId,
        lid: { schema: { type: "string", format: "uuid" }, description: "listener id" },
      },
      responses: { "204": { description: "ended" } },
      errors: [404],
    },
    {
      method: "get",
      path: "/v1/rooms/{id}/events",
      tag: "rooms",
      summary: "Server-Sent Events of the room: caption, telop, room (id = room seq; Last-Event-ID replays)",
      scope: "rooms:view",
      pathParams: roomId,
      query: RoomEventsQuery,
      headerParams: [{
        name: "Last-Event-ID",
        schema: { type: "string" },
        description: "replay events after this seq",
      }],
      responses: {
        "200": { description: "event stream", content: { "text/event-stream": { type: "string" } } },
      },
      errors: [404, 503],
    },
    {
      method: "post",
      path: "/v1/tracks",
      tag: "rooms",
      summary: "Upload a backing track (audio/wav); stored as 16-bit mono 48 kHz PCM",
      description:
        "Native: PCM 16-bit mono 48000 Hz. PCM 16/24/32-bit or float, 1–2 channels, 8000–48000 Hz " +
        "are converted. 8-bit, more than 2 channels, rates above 48 kHz and compressed WAV encodings: 415 " +
        "with the reason; corrupt or truncated files: 400; over TRACK_MAX_BYTES / TRACK_MAX_DURATION_MS: 413.",
      scope: "sessions",
      query: TrackUploadQuery,
      body: { required: true, content: { "audio/wav": { type: "string", contentMediaType: "audio/wav" } } },
      responses: { "201": { description: "the track", content: json(TrackSchema) } },
      errors: [400, 413, 415],
    },
    {
      method: "get",
      path: "/v1/tracks",
      tag: "rooms",
      summary: "The tenant's backing tracks",
      scope: "sessions",
      responses: {
        "200": { description: "tracks", content: json(z.object({ tracks: z.array(TrackSchema) })) },
      },
    },
    {
      method: "get",
      path: "/v1/tracks/{id}",
      tag: "rooms",
      summary: "A backing track's metadata",
      scope: "sessions",
      pathParams: uuidParam("track id"),
      responses: { "200": { description: "the track", content: json(TrackSchema) } },
      errors: [404],
    },
    {
      method: "delete",
      path: "/v1/tracks/{id}",
      tag: "rooms",
      summary: "Delete a backing track (rooms already playing it keep their copy until they close)",
      scope: "sessions",
      pathParams: uuidParam("track id"),
      responses: { "204": { description: "deleted" } },
      errors: [404],
    },
  ];
}

function ttsOperations(): Operation[] {
  const jobId = uuidParam("job id");
  return [
    {
      method: "post",
      path: "/v1/tts/jobs",
      tag: "tts",
      summary: "Submit a text-to-speech job",
      description:
        "The text is split into sentence-sized chunks that origins synthesize; audio can be streamed " +
        "while the job runs. Over-long text is 413.",
      scope: "tts",
      headerParams: [idempotencyHeader],
      body: { required: true, content: { "application/json": CreateTtsJob } },
      responses: {
        "202": {
          description: "accepted (queued)",
          headers: { Location: { description: "/v1/tts/jobs/{id}", schema: { type: "string" } } },
          content: { "application/json": TtsJobCreatedSchema },
        },
      },
      errors: [400, 409, 413, 415],
    },
    {
      method: "post",
      path: "/v1/tts/batches",
      tag: "tts",
      summary: "Submit several texts as one batch (one job each; batch priority by default)",
      scope: "tts",
      headerParams: [idempotencyHeader],
      body: { required: true, content: { "application/json": CreateTtsBatch } },
      responses: {
        "202": { description: "accepted", content: { "application/json": TtsBatchCreatedSchema } },
      },
      errors: [400, 409, 413, 415],
    },
    {
      method: "get",
      path: "/v1/tts/jobs",
      tag: "tts",
      summary: "List the tenant's TTS jobs, newest first (keyset pagination)",
      scope: "tts",
      query: ListTtsJobsQuery,
      responses: { "200": { description: "one page", content: { "application/json": TtsJobListSchema } } },
      errors: [400],
    },
    {
      method: "get",
      path: "/v1/tts/jobs/{id}",
      tag: "tts",
      summary: "A job's status, progress, timings and error",
      scope: "tts",
      pathParams: jobId,
      responses: { "200": { description: "the job", content: { "application/json": TtsJobSchema } } },
      errors: [404],
    },
    {
      method: "delete",
      path: "/v1/tts/jobs/{id}",
      tag: "tts",
      summary: "Cancel a job (returns the job: canceled, or the terminal status it already had)",
      scope: "tts",
      pathParams: jobId,
      responses: { "200": { description: "the job", content: { "application/json": TtsJobSchema } } },
      errors: [404],
    },
    {
      method: "get",
      path: "/v1/tts/jobs/{id}/audio",
      tag: "tts",
      summary: "The job's audio: WAV or raw PCM16 LE; streams chunks as they finish while the job runs",
      description:
        "For a finished job the response has Content-Length. While the job runs the body grows as " +
        "chunks are synthesized (the WAV header then has an open length). `X-Parley-Job-Status` gives the " +
        "status at the start; a stream that ends early means the job failed or was canceled.",
      scope: "tts",
      pathParams: jobId,
      queryParams: [{
        name: "format",
        schema: { type: "string", enum: [...TTS_FORMATS] },
        description: "default: the job's format",
      }],
      responses: {
        "200": {
          description: "audio",
          headers: { "X-Parley-Job-Status": { description: "job status when the response started" } },
          content: {
            "audio/wav": { type: "string", contentMediaType: "audio/wav" },
            "audio/pcm": { type: "string", description: "rate=22050;channels=1;encoding=s16le" },
          },
        },
      },
      errors: [400, 404, 409],
    },
    {
      method: "get",
      path: "/v1/tts/jobs/{id}/events",
      tag: "tts",
      summary: "Server-Sent Events of a job: status, chunk, progress, then succeeded | failed | canceled",
      scope: "tts",
      pathParams: jobId,
      responses: {
        "200": { description: "event stream", content: { "text/event-stream": { type: "string" } } },
      },
      errors: [404],
    },
  ];
}

// ------------------------------------------------------------------------------------------------ builder

function toJson(s: z.ZodType, io: "input" | "output"): JsonSchema {
  const { $schema: _, ...rest } = z.toJSONSchema(s, { io, unrepresentable: "any" }) as JsonSchema;
  return rest;
}

function jsonSchemaOf(s: Schemaish, io: "input" | "output"): JsonSchema {
  if (!(s instanceof z.ZodType)) return s;
  for (const [name, named] of Object.entries(NAMED)) {
    if (named.schema === s) return { $ref: `#/components/schemas/${name}` };
  }
  return toJson(s, io);
}

const STATUS_TEXT: Record<number, string> = {
  400: "invalid request (validation_failed, invalid_json, bad_request)",
  401: "missing, invalid or expired credential",
  403: "the credential lacks the scope, or a token is bound to another session",
  404: "not found (another tenant's resources are indistinguishable from missing ones)",
  405: "method not allowed",
  409: "conflict",
  413: "request body too large",
  415: "unsupported Content-Type",
  429: "rate limited (per API key) or over a session limit; see Retry-After",
  502: "origin error",
  503: "unavailable; see Retry-After",
};

export function buildOpenApiDocument(
  ops: Operation[],
  opts: { serverUrl?: string; version?: string } = {},
): JsonSchema {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const op of ops) {
    const parameters: unknown[] = [];
    for (const [name, p] of Object.entries(op.pathParams ?? {})) {
      parameters.push({ name, in: "path", required: true, description: p.description, schema: p.schema });
    }
    if (op.query) {
      const js = z.toJSONSchema(op.query, { io: "input" }) as JsonSchema & {
        properties?: Record<string, JsonSchema>;
        required?: string[];
      };
      for (const [name, schema] of Object.entries(js.properties ?? {})) {
        const { description, ...rest } = schema;
        parameters.push({
          name,
          in: "query",
          required: js.required?.includes(name) ?? false,
          ...(description ? { description } : {}),
          schema: rest,
        });
      }
    }
    for (const p of op.queryParams ?? []) {
      parameters.push({
        name: p.name,
        in: "query",
        required: p.required ?? false,
        description: p.description,
        schema: p.schema,
      });
    }
    for (const h of op.headerParams ?? []) {
      parameters.push({
        name: h.name,
        in: "header",
        required: false,
        description: h.description,
        schema: h.schema,
      });
    }
    const responses: Record<string, unknown> = {};
    for (const [status, r] of Object.entries(op.responses)) {
      responses[status] = {
        description: r.description,
        ...(r.headers ? { headers: r.headers } : {}),
        ...(r.content
          ? {
            content: Object.fromEntries(
              Object.entries(r.content).map(([type, s]) => [type, { schema: jsonSchemaOf(s, "output") }]),
            ),
          }
          : {}),
      };
    }
    const errorStatuses = new Set(op.errors ?? []);
    if (op.scope !== null) [401, 403, 429].forEach((s) => errorStatuses.add(s));
    if (op.scope === null) errorStatuses.clear();
    for (const s of [...errorStatuses].sort()) {
      responses[String(s)] ??= {
        description: STATUS_TEXT[s] ?? "error",
        content: { "application/json": { schema: { $ref: "#/components/schemas/Error" } } },
      };
    }
    const scopeText = op.scope === null
      ? "No authentication."
      : op.scope === "key"
      ? "Requires an API key (not a browser token)."
      : op.scope === "any"
      ? "Requires an API key or browser token."
      : `Scope: \`${op.scope}\`${op.scope === "admin" ? " (API keys only)" : ""}.`;
    paths[op.path] ??= {};
    paths[op.path][op.method] = {
      tags: [op.tag],
      summary: op.summary,
      description: [op.description, scopeText].filter(Boolean).join("\n\n"),
      operationId: operationId(op),
      ...(op.scope !== null ? { security: [{ bearerAuth: [] }] } : { security: [] }),
      ...(op.scope && op.scope !== "key" && op.scope !== "any" ? { "x-parley-scope": op.scope } : {}),
      ...(parameters.length ? { parameters } : {}),
      ...(op.body
        ? {
          requestBody: {
            required: op.body.required,
            ...(op.body.description ? { description: op.body.description } : {}),
            content: Object.fromEntries(
              Object.entries(op.body.content).map((
                [type, s],
              ) => [type, { schema: jsonSchemaOf(s, "input") }]),
            ),
          },
        }
        : {}),
      responses,
    };
  }
  const schemas: Record<string, JsonSchema> = {};
  for (const [name, n] of Object.entries(NAMED)) schemas[name] = toJson(n.schema, n.io);
  return {
    openapi: "3.1.0",
    info: {
      title: "Parley API",
      version: opts.version ?? "1",
      description: "Real-time speech sessions (WebRTC, WHIP-style signaling), text-to-speech jobs, and " +
        "transcript history. Every request carries `Authorization: Bearer <API key or browser token>`; every " +
        'error has the body `{"error":{"code","message"}}`. Scopes: ' + SCOPES.join(", ") +
        " (admin implies the others within its tenant). Session states: " + SESSION_STATES.join(", ") +
        "; close reasons: " + CLOSE_REASONS.join(", ") + ".",
    },
    ...(opts.serverUrl ? { servers: [{ url: opts.serverUrl }] } : {}),
    tags: [
      { name: "sessions", description: "live speech sessions (WebRTC signaling)" },
      { name: "history", description: "session history, transcripts, replay and search" },
      { name: "tts", description: "text-to-speech jobs" },
      { name: "openai", description: "OpenAI-compatible audio API: transcriptions, speech, models, voices" },
      { name: "rooms", description: "rooms: WHEP listeners, SSE caption viewers, backing tracks" },
      { name: "tokens", description: "browser tokens" },
      { name: "keys", description: "API keys and nodes (admin)" },
      { name: "phone", description: "phone calls: SIP credentials and numbers (admin)" },
      { name: "ops", description: "health, metrics, documentation" },
    ],
    paths,
    components: {
      securitySchemes: {
        bearerAuth: {
          type: "http",
          scheme: "bearer",
          description: "API key (`pk_…`) or browser token (JWT from POST /v1/tokens)",
        },
      },
      schemas,
    },
  };
}

function operationId(op: Operation): string {
  const words = op.path.replace(/\{(\w+)\}/g, "by_$1").split(/[/._-]+/).filter(Boolean);
  return [op.method, ...words].map((w, i) => i === 0 ? w : w[0].toUpperCase() + w.slice(1)).join("");
}

// ------------------------------------------------------------------------------------------------ routes

/** Operation sources other route groups contribute (TTS). */
const extraOperations: Array<() => Operation[]> = [];
export function registerOperations(source: () => Operation[]): void {
  extraOperations.push(source);
}

export function allOperations(): Operation[] {
  return [...coreOperations(), ...extraOperations.flatMap((f) => f())];
}

interface Asset {
  body: Uint8Array<ArrayBuffer>;
  type: string;
}

const ASSETS: Record<string, string> = {
  "swagger-ui.css": "text/css; charset=utf-8",
  "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
  "favicon-32x32.png": "image/png",
};

const assetCache = new Map<string, Promise<Asset>>();

function swaggerDir(): URL {
  // index.js of the package; its siblings are the prebuilt UI files.
  return new URL("./", import.meta.resolve("swagger-ui-dist"));
}

function loadAsset(name: string): Promise<Asset> {
  let p = assetCache.get(name);
  if (!p) {
    p = Deno.readFile(new URL(name, swaggerDir())).then((body) => ({ body, type: ASSETS[name] }));
    p.catch(() => assetCache.delete(name));
    assetCache.set(name, p);
  }
  return p;
}

const DOCS_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Parley API</title>
<link rel="icon" href="/docs/favicon-32x32.png">
<link rel="stylesheet" href="/docs/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/docs/swagger-ui-bundle.js"></script>
<script src="/docs/init.js"></script>
</body>
</html>
`;

const INIT_JS = `window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  persistAuthorization: false,
  tryItOutEnabled: false,
});
`;

/** GET /openapi.json, GET /docs (+ its static files). No authentication: the document holds no secrets. */
export function docsRoutes(app: EdgeApp, ctx: EdgeContext): void {
  let doc: string | undefined;
  app.get("/openapi.json", (c) => {
    doc ??= JSON.stringify(buildOpenApiDocument(allOperations(), { serverUrl: ctx.config.PUBLIC_URL }));
    return c.body(doc, 200, {
      "content-type": "application/json; charset=utf-8",
      "cache-control": "no-cache",
    });
  });
  app.get("/docs", (c) => c.html(DOCS_HTML));
  app.get("/docs/init.js", (c) => c.body(INIT_JS, 200, { "content-type": "text/javascript; charset=utf-8" }));
  app.get("/docs/:file", async (c) => {
    const name = c.req.param("file") ?? "";
    if (!Object.hasOwn(ASSETS, name)) return c.notFound();
    const a = await loadAsset(name);
    return c.body(a.body, 200, { "content-type": a.type, "cache-control": "public, max-age=86400" });
  });
}
