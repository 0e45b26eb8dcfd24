/**
 * The whole Parley schema. edge/ and origin/ meet here. Migrations in ../migrations are generated from this
 * file by drizzle-kit (`deno task db:generate`) and applied identically to PGlite (PostgreSQL 18) and
 * PostgreSQL 15, so keep SQL portable (no PG16+ features).
 */
import { sql } from "drizzle-orm";
import {
  bigint,
  bigserial,
  boolean,
  customType,
  index,
  integer,
  jsonb,
  pgTable,
  primaryKey,
  real,
  text,
  timestamp,
  uniqueIndex,
  uuid,
} from "drizzle-orm/pg-core";

const ts = (name: string) => timestamp(name, { withTimezone: true, mode: "string" });

const bytea = customType<{ data: Uint8Array; driverData: Uint8Array }>({
  dataType: () => "bytea",
});

const tsvector = customType<{ data: string }>({ dataType: () => "tsvector" });

/** Process-shared settings, e.g. secrets generated on first start when not given by environment. */
export const settings = pgTable("settings", {
  key: text("key").primaryKey(),
  value: text("value").notNull(),
  createdAt: ts("created_at").notNull().defaultNow(),
});

export const tenants = pgTable("tenants", {
  id: uuid("id").primaryKey().defaultRandom(),
  name: text("name").notNull(),
  createdAt: ts("created_at").notNull().defaultNow(),
});

export const apiKeys = pgTable("api_keys", {
  id: uuid("id").primaryKey().defaultRandom(),
  tenantId: uuid("tenant_id").notNull().references(() => tenants.id, { onDelete: "cascade" }),
  name: text("name").notNull(),
  /** First characters of the key, shown in listings so a human can tell keys apart. */
  prefix: text("prefix").notNull(),
  /** SHA-256 (hex) of the whole key. The key itself is never stored. */
  hash: text("hash").notNull(),
  scopes: text("scopes").array().notNull(),
  /** Max concurrent live sessions for this key (null = tenant default). */
  maxSessions: integer("max_sessions"),
  createdAt: ts("created_at").notNull().defaultNow(),
  revokedAt: ts("revoked_at"),
  lastUsedAt: ts("last_used_at"),
}, (t) => [uniqueIndex("api_keys_hash_uq").on(t.hash), index("api_keys_tenant_idx").on(t.tenantId)]);

/** Origin nodes. Liveness is heartbeat_at newer than the configured timeout. */
export const nodes = pgTable("nodes", {
  id: text("id").primaryKey(),
  url: text("url").notNull(),
  capacity: integer("capacity").notNull(),
  load: integer("load").notNull().default(0),
  draining: boolean("draining").notNull().default(false),
  version: text("version").notNull().default(""),
  /** The node's speech engines (protocol/engines.ts EngineDescriptor[]), for `GET /v1/engines`. */
  engines: jsonb("engines").notNull().default([]),
  startedAt: ts("started_at").notNull().defaultNow(),
  heartbeatAt: ts("heartbeat_at").notNull().defaultNow(),
  stoppedAt: ts("stopped_at"),
});

export const sessions = pgTable("sessions", {
  id: uuid("id").primaryKey().defaultRandom(),
  tenantId: uuid("tenant_id").notNull().references(() => tenants.id, { onDelete: "cascade" }),
  apiKeyId: uuid("api_key_id"),
  nodeId: text("node_id"),
  /** connecting | active | closing | closed */
  state: text("state").notNull().default("connecting"),
  /** Close reason (protocol CLOSE_REASONS) once closing/closed. */
  reason: text("reason"),
  mode: text("mode").notNull().default("transcribe"),
  /** Transport of the session: webrtc | websocket | sip (protocol/session_messages.ts SESSION_KINDS). */
  kind: text("kind").notNull().default("webrtc"),
  options: jsonb("options").notNull().default({}),
  /** Highest event seq persisted for the session. */
  lastSeq: integer("last_seq").notNull().default(0),
  createdAt: ts("created_at").notNull().defaultNow(),
  activeAt: ts("active_at"),
  closedAt: ts("closed_at"),
  updatedAt: ts("updated_at").notNull().defaultNow(),
}, (t) => [
  index("sessions_tenant_created_idx").on(t.tenantId, t.createdAt, t.id),
  index("sessions_node_state_idx").on(t.nodeId, t.state),
]);

/** Every event sent on a session's `events` channel, persisted before it is sent (resume + replay). */
export const sessionEvents = pgTable("session_events", {
  sessionId: uuid("session_id").notNull().references(() => sessions.id, { onDelete: "cascade" }),
  seq: integer("seq").notNull(),
  type: text("type").notNull(),
  payload: jsonb("payload").notNull(),
  createdAt: ts("created_at").notNull().defaultNow(),
}, (t) => [primaryKey({ columns: [t.sessionId, t.seq] })]);

/** Confirmed recognition results (partials are not stored here; they live only in session_events if at all). */
export const transcriptSegments = pgTable("transcript_segments", {
  id: bigserial("id", { mode: "number" }).primaryKey(),
  sessionId: uuid("session_id").notNull().references(() => sessions.id, { onDelete: "cascade" }),
  tenantId: uuid("tenant_id").notNull(),
  segmentId: integer("segment_id").notNull(),
  seq: integer("seq").notNull(),
  text: text("text").notNull(),
  alternatives: jsonb("alternatives").notNull().default([]),
  startMs: integer("start_ms").notNull(),
  endMs: integer("end_ms").notNull(),
  latencyMs: integer("latency_ms"),
  /** [{text, start_ms, end_ms, confidence}] in session time, when the engine aligns words; null otherwise. */
  words: jsonb("words"),
  /** 0..1 confidence of the text when the engine reports one. */
  confidence: real("confidence"),
  createdAt: ts("created_at").notNull().defaultNow(),
  tsv: tsvector("tsv").generatedAlwaysAs(sql`to_tsvector('english', "text")`),
}, (t) => [
  uniqueIndex("transcript_segments_session_seq_uq").on(t.sessionId, t.seq),
  index("transcript_segments_tenant_created_idx").on(t.tenantId, t.createdAt),
  // Search is always within a tenant: the tenant is one more lexeme in the indexed vector (db/history.ts
  // searchSegments), so GIN intersects "words AND tenant" itself instead of AND-ing a btree bitmap.
  index("transcript_segments_tenant_tsv_idx").using(
    "gin",
    sql`(${t.tsv} || array_to_tsvector(array['t' || replace(${t.tenantId}::text, '-', '')]))`,
  ),
]);

export const ttsJobs = pgTable("tts_jobs", {
  id: uuid("id").primaryKey().defaultRandom(),
  tenantId: uuid("tenant_id").notNull().references(() => tenants.id, { onDelete: "cascade" }),
  apiKeyId: uuid("api_key_id"),
  batchId: uuid("batch_id"),
  idempotencyKey: text("idempotency_key"),
  text: text("text").notNull(),
  voice: text("voice").notNull(),
  engine: text("engine").notNull(),
  format: text("format").notNull().default("wav"),
  /** interactive | batch */
  priority: text("priority").notNull().default("interactive"),
  /** queued | running | succeeded | failed | canceled */
  status: text("status").notNull().default("queued"),
  chunksTotal: integer("chunks_total").notNull(),
  chunksDone: integer("chunks_done").notNull().default(0),
  /** Characters already synthesized: the fairness scheduler's "work done" per job. */
  charsDone: integer("chars_done").notNull().default(0),
  /** Characters of all chunks (the job's size). */
  charsTotal: integer("chars_total").notNull().default(0),
  /** Characters claimed so far (in flight + done): what the fair claim order compares. */
  charsClaimed: integer("chars_claimed").notNull().default(0),
  /** Chunks waiting to be claimed (claim −1, lease expiry +1, cancel → 0): runnable iff > 0. */
  chunksQueued: integer("chunks_queued").notNull().default(0),
  audioMs: bigint("audio_ms", { mode: "number" }).notNull().default(0),
  sampleRate: integer("sample_rate").notNull().default(22050),
  /** Speaking rate, 0.5–2.0. */
  speed: real("speed").notNull().default(1),
  /** `text` is SSML; its chunks hold regenerated safe SSML (protocol/ssml.ts ssmlJobChunks), never user markup. */
  ssml: boolean("ssml").notNull().default(false),
  error: text("error"),
  queuedAt: ts("queued_at").notNull().defaultNow(),
  startedAt: ts("started_at"),
  firstAudioAt: ts("first_audio_at"),
  finishedAt: ts("finished_at"),
}, (t) => [
  uniqueIndex("tts_jobs_idem_uq").on(t.tenantId, t.idempotencyKey),
  index("tts_jobs_tenant_queued_idx").on(t.tenantId, t.queuedAt, t.id),
  index("tts_jobs_status_idx").on(t.status),
  // Live jobs for the claim's fair order. The predicate is on status (changes twice in a job's life), not on
  // chunks_queued (changes on every claim): an index predicate column that changes makes every claim's job-row
  // update a non-HOT update with inserts into all five indexes.
  index("tts_jobs_live_idx").on(t.priority, t.tenantId).where(sql`status in ('queued', 'running')`),
]);

/** A job's unit of work: one sentence-sized chunk. Exactly one result per chunk. */
export const ttsChunks = pgTable("tts_chunks", {
  jobId: uuid("job_id").notNull().references(() => ttsJobs.id, { onDelete: "cascade" }),
  idx: integer("idx").notNull(),
  tenantId: uuid("tenant_id").notNull(),
  text: text("text").notNull(),
  /** queued | running | done | failed | canceled */
  status: text("status").notNull().default("queued"),
  /** 0 = interactive, 1 = batch (lower claims first). */
  priorityClass: integer("priority_class").notNull().default(0),
  leaseUntil: ts("lease_until"),
  claimedBy: text("claimed_by"),
  claimedAt: ts("claimed_at"),
  /** Incremented by every claim; the lease token a result write must present. */
  attempts: integer("attempts").notNull().default(0),
  /** The chunk's audio, encoded as `codec` says (the column keeps its first name: rows from before hold PCM). */
  pcm: bytea("pcm"),
  /** `pcm` (PCM16 LE at sample_rate) or `opus` (one Ogg Opus stream, lib/audio/stored_audio.ts). */
  codec: text("codec").notNull().default("pcm"),
  /** Samples at sample_rate the audio decodes to (null on PCM rows from before: octet_length(pcm) / 2). */
  samples: integer("samples"),
  audioMs: integer("audio_ms"),
  sampleRate: integer("sample_rate"),
  createdAt: ts("created_at").notNull().defaultNow(),
  doneAt: ts("done_at"),
}, (t) => [
  primaryKey({ columns: [t.jobId, t.idx] }),
  index("tts_chunks_lease_idx").on(t.leaseUntil).where(sql`status = 'running'`),
  /** The claim's per-job lookup of the next queued chunk, without visiting done ones. */
  index("tts_chunks_queued_idx").on(t.jobId, t.idx).where(sql`status = 'queued'`),
]);

/**
 * Rooms (one publisher session → many WHEP listeners and SSE caption viewers). `options` is the validated
 * protocol/rooms.ts RoomOptions. The room lives on at most one origin at a time: `node_id` is set by the edge
 * when the room's first publisher or listener arrives (and replaced when that node is no longer live).
 */
export const rooms = pgTable("rooms", {
  id: uuid("id").primaryKey().defaultRandom(),
  tenantId: uuid("tenant_id").notNull().references(() => tenants.id, { onDelete: "cascade" }),
  name: text("name").notNull().default(""),
  options: jsonb("options").notNull().default({}),
  /** Origin the room is materialized on (null until its first publisher or listener). */
  nodeId: text("node_id"),
  /** Session currently publishing into the room. */
  publisherSessionId: uuid("publisher_session_id"),
  /** Highest room event seq persisted (room_events). */
  lastSeq: integer("last_seq").notNull().default(0),
  createdAt: ts("created_at").notNull().defaultNow(),
  deletedAt: ts("deleted_at"),
}, (t) => [index("rooms_tenant_created_idx").on(t.tenantId, t.createdAt, t.id)]);

/** Room-wide events (captions, telop, room state) with the room's seq: SSE viewers replay and follow them. */
export const roomEvents = pgTable("room_events", {
  roomId: uuid("room_id").notNull().references(() => rooms.id, { onDelete: "cascade" }),
  seq: integer("seq").notNull(),
  type: text("type").notNull(),
  payload: jsonb("payload").notNull(),
  createdAt: ts("created_at").notNull().defaultNow(),
}, (t) => [primaryKey({ columns: [t.roomId, t.seq] })]);

/** Backing tracks: 16-bit mono 48 kHz PCM (little-endian), played looped as a room's idle source. */
export const tracks = pgTable("tracks", {
  id: uuid("id").primaryKey().defaultRandom(),
  tenantId: uuid("tenant_id").notNull().references(() => tenants.id, { onDelete: "cascade" }),
  name: text("name").notNull().default(""),
  pcm: bytea("pcm").notNull(),
  durationMs: integer("duration_ms").notNull(),
  sizeBytes: integer("size_bytes").notNull(),
  /** What was uploaded (e.g. "44100 Hz, 16-bit, 2 channels") before conversion. */
  source: text("source").notNull().default(""),
  createdAt: ts("created_at").notNull().defaultNow(),
}, (t) => [index("tracks_tenant_created_idx").on(t.tenantId, t.createdAt, t.id)]);

/**
 * SIP digest credentials of a tenant. Only the digest HA1 hashes are stored (MD5 and SHA-256 of
 * `username:realm:password`), never the password. A username is unique within its realm across tenants:
 * the digest exchange names the user before Parley knows the tenant.
 */
export const sipCredentials = pgTable("sip_credentials", {
  id: uuid("id").primaryKey().defaultRandom(),
  tenantId: uuid("tenant_id").notNull().references(() => tenants.id, { onDelete: "cascade" }),
  username: text("username").notNull(),
  realm: text("realm").notNull(),
  ha1Md5: text("ha1_md5").notNull(),
  ha1Sha256: text("ha1_sha256").notNull(),
  createdAt: ts("created_at").notNull().defaultNow(),
}, (t) => [
  uniqueIndex("sip_credentials_realm_user_uq").on(t.realm, t.username),
  index("sip_credentials_tenant_idx").on(t.tenantId),
]);

/**
 * Phone numbers / extensions of a tenant: the Request-URI user of an incoming call selects one (unique across
 * tenants), and its options become the call's session options.
 */
export const sipNumbers = pgTable("sip_numbers", {
  id: uuid("id").primaryKey().defaultRandom(),
  tenantId: uuid("tenant_id").notNull().references(() => tenants.id, { onDelete: "cascade" }),
  number: text("number").notNull(),
  /** SessionOptions of the call (mode, voice, …). */
  options: jsonb("options").notNull().default({}),
  /** Spoken when the call is answered (empty: none). */
  greeting: text("greeting"),
  /** Room the calls publish into (mirrors options.room, which the origin reads). */
  room: text("room"),
  createdAt: ts("created_at").notNull().defaultNow(),
}, (t) => [
  uniqueIndex("sip_numbers_number_uq").on(t.number),
  index("sip_numbers_tenant_idx").on(t.tenantId),
]);
