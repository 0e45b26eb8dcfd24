/**
 * Queries behind the history API (edge/routes/history.ts): session listing with keyset pagination, transcript
 * pages, the persisted event timeline, full-text search, erasure and retention. Plain SQL through drizzle's
 * `sql` template (every value is a bound parameter), portable between PostgreSQL 15 and PGlite (18).
 *
 * Timestamps leave the database as ISO 8601 UTC strings with microseconds (`iso()` below), formatted by
 * Postgres itself: the same text on both drivers, and exact, so a cursor built from one round-trips into a
 * `::timestamptz` comparison without losing the microseconds a JS Date would drop.
 */
import { type SQL, sql } from "drizzle-orm";
import { sweepJobAudio } from "./tts_jobs.ts";
import type { Database } from "./client.ts";
import type { SessionSummary } from "../protocol/history.ts";
import type { SessionState, TranscriptWord } from "../protocol/session_messages.ts";

/** `created_at` → '2026-11-22T21:11:23.123456Z' (exact, driver-independent). */
function iso(column: SQL): SQL {
  return sql`to_char(${column} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;
}

/**
 * The range condition of a page of `n` rows after `afterSeq` in one session, for tables keyed by
 * (session_id, seq). The seq of the n-th row comes from an index-only scan, and the page is the range
 * (afterSeq, that seq]: bounded work whatever plan is chosen. Without the bound, when the planner misjudges how
 * many rows of one long session follow afterSeq (per-column statistics), it picks a bitmap scan + sort of ALL of
 * them (7.5k rows of a 10k-segment session: tens of ms).
 */
function pageRange(table: SQL, sessionId: string, afterSeq: number, n: number): SQL {
  return sql`session_id = ${sessionId}::uuid and seq > ${afterSeq}
    and seq <= coalesce((select seq from ${table}
      where session_id = ${sessionId}::uuid and seq > ${afterSeq}
      order by seq offset ${n - 1} limit 1), 2147483647)`;
}

// ---------------------------------------------------------------- sessions

/** A sessions row as the history API returns it. */
export type SessionListRow = SessionSummary;

/** Position in the newest-first order: the (created_at, id) of the last row of the previous page. */
export interface SessionCursor {
  createdAt: string;
  id: string;
}

export interface ListSessionsInput {
  tenantId: string;
  /** created_at >= from (ISO timestamp). */
  from?: string;
  /** created_at < to (ISO timestamp). */
  to?: string;
  states?: string[];
  /** Only this session (browser tokens bound to one session). */
  onlyId?: string;
  limit: number;
  cursor?: SessionCursor;
}

const SESSION_COLUMNS = sql`id, state, reason, mode, kind, options, node_id, last_seq,
  ${iso(sql`created_at`)} as created_at, ${iso(sql`active_at`)} as active_at, ${
  iso(sql`closed_at`)
} as closed_at`;

/**
 * One page of a tenant's sessions, newest first. Keyset pagination on the strict total order
 * (created_at DESC, id DESC) over the index (tenant_id, created_at, id): a row is on exactly one page however
 * many rows are inserted while a client pages (new rows sort before the cursor or, if their transaction began
 * earlier, fall into a later page once; nothing is skipped or repeated).
 */
export async function listSessions(
  database: Database,
  input: ListSessionsInput,
): Promise<{ rows: SessionListRow[]; next?: SessionCursor }> {
  const where: SQL[] = [sql`tenant_id = ${input.tenantId}`];
  if (input.from) where.push(sql`created_at >= ${input.from}::timestamptz`);
  if (input.to) where.push(sql`created_at < ${input.to}::timestamptz`);
  if (input.states?.length) {
    where.push(sql`state in (${sql.join(input.states.map((s) => sql`${s}`), sql`, `)})`);
  }
  if (input.onlyId) where.push(sql`id = ${input.onlyId}::uuid`);
  if (input.cursor) {
    where.push(sql`(created_at, id) < (${input.cursor.createdAt}::timestamptz, ${input.cursor.id}::uuid)`);
  }
  const rows = await database.query<SessionListRow>(sql`
    select ${SESSION_COLUMNS} from sessions
    where ${sql.join(where, sql` and `)}
    order by created_at desc, id desc
    limit ${input.limit + 1}`);
  const more = rows.length > input.limit;
  const page = (more ? rows.slice(0, input.limit) : rows).map((r) => ({
    ...r,
    last_seq: Number(r.last_seq),
  }));
  const last = page[page.length - 1];
  return { rows: page, next: more && last ? { createdAt: last.created_at, id: last.id } : undefined };
}

/** The session if it belongs to the tenant (another tenant's session is indistinguishable from none). */
export async function sessionOfTenant(
  database: Database,
  tenantId: string,
  id: string,
): Promise<SessionListRow | undefined> {
  const rows = await database.query<SessionListRow>(sql`
    select ${SESSION_COLUMNS} from sessions where id = ${id}::uuid and tenant_id = ${tenantId}::uuid`);
  return rows[0] ? { ...rows[0], last_seq: Number(rows[0].last_seq) } : undefined;
}

/** State and last seq only (follow streams poll this). */
export async function sessionProgress(
  database: Database,
  id: string,
): Promise<{ state: SessionState; last_seq: number } | undefined> {
  const rows = await database.query<{ state: SessionState; last_seq: number }>(
    sql`select state, last_seq from sessions where id = ${id}::uuid`,
  );
  return rows[0] ? { state: rows[0].state, last_seq: Number(rows[0].last_seq) } : undefined;
}

// ---------------------------------------------------------------- transcript

export interface SegmentRow {
  seq: number;
  segment_id: number;
  status: "confirmed" | "partial";
  text: string;
  alternatives: Array<{ text: string; score: number }>;
  start_ms: number;
  end_ms: number;
  latency_ms: number | null;
  /** Word timings (session time) and confidences, when the engine gave them. */
  words: TranscriptWord[] | null;
  confidence: number | null;
  created_at: string;
}

/** Confirmed segments with seq > afterSeq, in seq order (unique index (session_id, seq)). */
export async function transcriptPage(
  database: Database,
  sessionId: string,
  afterSeq: number,
  limit: number,
): Promise<SegmentRow[]> {
  // Bounded by pageRange; timestamps are formatted after the limit.
  const rows = await database.query<SegmentRow>(sql`
    select seq, segment_id, 'confirmed' as status, text, alternatives, start_ms, end_ms, latency_ms, words,
      confidence, ${iso(sql`created_at`)} as created_at
    from (
      select seq, segment_id, text, alternatives, start_ms, end_ms, latency_ms, words, confidence, created_at
      from transcript_segments
      where ${pageRange(sql`transcript_segments`, sessionId, afterSeq, limit)}
      order by seq
      limit ${limit}
    ) page
    order by seq`);
  return rows.map(numericSegment);
}

/** A page of confirmed segments already rendered as a JSON array by the database (see transcriptPageJson). */
export interface JsonSegmentPage {
  /** JSON array of up to `limit` segments, each shaped like SegmentRow. */
  json: string;
  count: number;
  /** seq of the page's last segment (null when empty). */
  lastSeq: number | null;
  /** true when segments follow the page. */
  more: boolean;
}

/**
 * The JSON route's page: the same bounded range and the same JSON as transcriptPage's rows, rendered by
 * PostgreSQL as one text value (`json_agg` over the page's rows), which the edge passes through untouched:
 * building the JSON in the edge makes V8 scavenge often enough to be the page's tail latency, and
 * `json_build_object` per row costs the server more (PG 15 looks up the type of every argument of every call).
 * The three ways and their figures: docs/history.md.
 */
export async function transcriptPageJson(
  database: Database,
  sessionId: string,
  afterSeq: number,
  limit: number,
): Promise<JsonSegmentPage> {
  const rows = await database.query<
    { json: string; n: number | string; last_seq: number | string | null; more: boolean }
  >(sql`
    with page as (
      select seq, segment_id, 'confirmed' as status, text, alternatives, start_ms, end_ms, latency_ms, words,
        confidence, ${iso(sql`created_at`)} as created_at
      from transcript_segments
      where ${pageRange(sql`transcript_segments`, sessionId, afterSeq, limit)}
      order by seq
      limit ${limit}
    )
    select coalesce(json_agg(page order by page.seq), '[]')::text as json, count(*) as n,
      max(page.seq) as last_seq,
      exists (select 1 from transcript_segments t
        where t.session_id = ${sessionId}::uuid and t.seq > coalesce(max(page.seq), ${afterSeq})) as more
    from page`);
  const r = rows[0];
  return {
    json: r?.json ?? "[]",
    count: Number(r?.n ?? 0),
    lastSeq: r?.last_seq === null || r?.last_seq === undefined ? null : Number(r.last_seq),
    more: Boolean(r?.more),
  };
}

/**
 * Partial and confirmed transcript events from the event log (partials are only there), in seq order.
 * Partials exist only if the session persisted them.
 */
export async function transcriptEventsPage(
  database: Database,
  sessionId: string,
  afterSeq: number,
  limit: number,
): Promise<SegmentRow[]> {
  const rows = await database.query<SegmentRow>(sql`
    select seq, (payload->>'segment_id')::int as segment_id, payload->>'status' as status,
      coalesce(payload->'alternatives'->0->>'text',
        coalesce(payload->>'stable_text', '') || coalesce(payload->>'unstable_text', '')) as text,
      coalesce(payload->'alternatives', '[]'::jsonb) as alternatives,
      round((payload->>'start_ms')::numeric)::int as start_ms, round((payload->>'end_ms')::numeric)::int as end_ms,
      round((payload->>'latency_ms')::numeric)::int as latency_ms,
      payload->'words' as words, (payload->>'confidence')::real as confidence,
      ${iso(sql`created_at`)} as created_at
    from session_events
    where session_id = ${sessionId}::uuid and seq > ${afterSeq} and type = 'transcript'
    order by seq
    limit ${limit}`);
  return rows.map(numericSegment);
}

function numericSegment(r: SegmentRow): SegmentRow {
  return {
    ...r,
    seq: Number(r.seq),
    segment_id: Number(r.segment_id),
    start_ms: Number(r.start_ms),
    end_ms: Number(r.end_ms),
    latency_ms: r.latency_ms === null ? null : Number(r.latency_ms),
    words: r.words ?? null,
    confidence: r.confidence === null || r.confidence === undefined ? null : Number(r.confidence),
  };
}

// ---------------------------------------------------------------- events

export interface EventRow {
  seq: number;
  type: string;
  created_at: string;
  payload: Record<string, unknown>;
}

/** Persisted events with seq > afterSeq in seq order (primary key (session_id, seq); bounded like transcriptPage). */
export async function eventsPage(
  database: Database,
  sessionId: string,
  afterSeq: number,
  limit: number,
): Promise<EventRow[]> {
  const rows = await database.query<EventRow>(sql`
    select seq, type, ${iso(sql`created_at`)} as created_at, payload
    from (
      select seq, type, created_at, payload from session_events
      where ${pageRange(sql`session_events`, sessionId, afterSeq, limit)}
      order by seq
      limit ${limit}
    ) page
    order by seq`);
  return rows.map((r) => ({ ...r, seq: Number(r.seq) }));
}

// ---------------------------------------------------------------- search

export interface SearchInput {
  tenantId: string;
  q: string;
  from?: string;
  to?: string;
  onlySessionId?: string;
  limit: number;
  /** Rank only the newest this many matches (default SEARCH_CANDIDATES). */
  candidates?: number;
  /** Rows the common-word pass walks (default SEARCH_RECENT_WALK). */
  recentWalk?: number;
}

export interface SearchHit {
  session_id: string;
  seq: number;
  segment_id: number;
  start_ms: number;
  end_ms: number;
  created_at: string;
  rank: number;
  /** ts_headline output with \u0001 … \u0002 around matches (the route turns them into safe HTML). */
  headline: string;
}

/** Delimiters ts_headline puts around matches; removed from the text first so they can only be ours. */
export const HIT_START = "\u0001";
export const HIT_END = "\u0002";
const HEADLINE_OPTIONS = `StartSel=${HIT_START}, StopSel=${HIT_END}, MaxWords=35, MinWords=15`;

/**
 * How many matching segments are ranked: the newest this many. Ranking reads every candidate row, so without a
 * bound a word in a third of a tenant's segments is far over the search goal (figures in docs/history.md).
 * Queries with fewer matches are ranked exactly.
 */
export const SEARCH_CANDIDATES = 1000;
/** How many of the tenant's newest segments the first, common-word pass walks (see searchSegments). */
export const SEARCH_RECENT_WALK = 10_000;

/**
 * Full-text search over the tenant's confirmed segments: `websearch_to_tsquery('english', q)` (accepts any
 * input — quotes, or, -negation — and never raises a syntax error), ranked by ts_rank among the newest
 * `SEARCH_CANDIDATES` matches, newest first among equal ranks. Headlines are computed for the returned rows only.
 *
 * The newest matches are found one of two ways, in one statement:
 *   1. walk the tenant's newest `SEARCH_RECENT_WALK` segments by (tenant_id, created_at), backwards, keeping
 *      matches; a common word fills the candidate set within a few thousand rows (3.5 ms for a word in a third
 *      of the segments, against 64 ms through the GIN bitmap, which must visit all 36k matches to sort them);
 *   2. only when that walk found fewer than `SEARCH_CANDIDATES`, the GIN index on `tsv || tenant lexeme`:
 *      the word matches under ~10% of recent segments, so the bitmap is small.
 * The planner cannot make this choice itself: the query text is a parameter and the tenant lexeme makes its
 * row estimate ten times too low.
 */
export async function searchSegments(database: Database, input: SearchInput): Promise<SearchHit[]> {
  const candidates = input.candidates ?? SEARCH_CANDIDATES;
  const walk = Math.max(candidates, input.recentWalk ?? SEARCH_RECENT_WALK);
  const filters: SQL[] = [];
  if (input.from) filters.push(sql`s.created_at >= ${input.from}::timestamptz`);
  if (input.to) filters.push(sql`s.created_at < ${input.to}::timestamptz`);
  if (input.onlySessionId) filters.push(sql`s.session_id = ${input.onlySessionId}::uuid`);
  const indexed: SQL[] = [
    // the indexed expression of transcript_segments_tenant_tsv_idx: GIN intersects words AND tenant
    sql`(s.tsv || array_to_tsvector(array['t' || replace(s.tenant_id::text, '-', '')])) @@ (q.query && q.tenant)`,
    // and the plain check (as text: not a second index to AND with)
    sql`s.tenant_id::text = ${input.tenantId}`,
    // a query of stop words only is empty; (empty && tenant) would be just the tenant: match nothing instead
    sql`numnode(q.query) > 0`,
    ...filters,
  ];
  const and = (xs: SQL[]) => xs.length ? sql` and ${sql.join(xs, sql` and `)}` : sql``;
  const cols =
    sql`s.id, s.session_id, s.seq, s.segment_id, s.start_ms, s.end_ms, s.created_at, s.text, s.tsv`;
  const rows = await database.query<SearchHit>(sql`
    with q as (select websearch_to_tsquery('english', ${input.q}) as query,
      ('t' || replace(${input.tenantId}::uuid::text, '-', ''))::tsquery as tenant),
    recent as (
      select w.* from (
        select ${cols} from transcript_segments s
        where s.tenant_id = ${input.tenantId}::uuid${and(filters)}
        order by s.created_at desc
        limit ${walk}
      ) w, q
      where numnode(q.query) > 0 and w.tsv @@ q.query
      order by w.created_at desc
      limit ${candidates}
    ),
    candidates as (
      select * from recent where (select count(*) from recent) >= ${candidates}
      union all
      (select ${cols} from transcript_segments s, q
        where ${sql.join(indexed, sql` and `)} and (select count(*) from recent) < ${candidates}
        order by s.created_at desc
        limit ${candidates})
    )
    select r.session_id, r.seq, r.segment_id, r.start_ms, r.end_ms, ${iso(sql`r.created_at`)} as created_at,
      r.rank,
      ts_headline('english', translate(r.text, ${HIT_START + HIT_END}, ''), q.query, ${HEADLINE_OPTIONS})
        as headline
    from (
      select c.id, c.session_id, c.seq, c.segment_id, c.start_ms, c.end_ms, c.created_at, c.text,
        ts_rank(c.tsv, q.query) as rank
      from candidates c, q
      order by rank desc, c.created_at desc, c.id desc
      limit ${input.limit}
    ) r, q
    order by r.rank desc, r.created_at desc, r.id desc`);
  return rows.map((r) => ({
    ...r,
    seq: Number(r.seq),
    segment_id: Number(r.segment_id),
    start_ms: Number(r.start_ms),
    end_ms: Number(r.end_ms),
    rank: Number(r.rank),
  }));
}

// ---------------------------------------------------------------- erasure and retention

/**
 * Right to erasure: delete a session's events and transcript segments in one transaction. The sessions row
 * (ids, state, timestamps, close reason: no content) stays so the id keeps answering GET.
 */
export async function eraseSessionData(
  database: Database,
  sessionId: string,
): Promise<{ events: number; segments: number }> {
  return await database.db.transaction(async (tx) => {
    const seg = await tx.execute(sql`delete from transcript_segments where session_id = ${sessionId}::uuid
      returning 1 as x`);
    const ev = await tx.execute(sql`delete from session_events where session_id = ${sessionId}::uuid
      returning 1 as x`);
    return { events: countRows(ev), segments: countRows(seg) };
  });
}

function countRows(result: unknown): number {
  if (Array.isArray(result)) return result.length;
  return (result as { rows?: unknown[] }).rows?.length ?? 0;
}

/**
 * Retention: delete ended sessions created more than `days` days ago; their events and segments go with them
 * (ON DELETE CASCADE). Batched (`batch` sessions per statement) so no statement holds locks for long.
 * `days <= 0` keeps everything. Returns the number of sessions deleted.
 */
export async function sweepRetention(
  database: Database,
  days: number,
  opts: { batch?: number; now?: string } = {},
): Promise<number> {
  if (!(days > 0)) return 0;
  const batch = opts.batch ?? 500;
  const now = opts.now ? sql`${opts.now}::timestamptz` : sql`now()`;
  let total = 0;
  while (true) {
    const rows = await database.query<{ id: string }>(sql`
      delete from sessions where id in (
        select id from sessions
        where state = 'closed' and created_at < ${now} - make_interval(days => ${Math.floor(days)})
        limit ${batch})
      returning id`);
    total += rows.length;
    if (rows.length < batch) return total;
  }
}

// ---------------------------------------------------------------- live feed

/** What a feed subscriber hears: a new event's seq, the session closing, or "poll" after a reconnect. */
export type FeedSignal = { kind: "event"; seq: number } | { kind: "closed" } | { kind: "poll" };

export const SESSION_EVENTS_CHANNEL = "session_events";

/**
 * One LISTEN per database for the whole process (migration 0001 makes every session_events insert and every
 * close NOTIFY '<session_id>:<seq>' / '<session_id>:closed'), fanned out to per-session subscribers. The
 * notification is only a wake-up: subscribers read rows themselves, so a lost notification costs latency, not
 * data (after a reconnect every subscriber is told to poll).
 */
export class SessionEventFeed {
  readonly #subs = new Map<string, Set<(s: FeedSignal) => void>>();
  #ready?: Promise<void>;

  constructor(private readonly database: Database) {}

  /** Resolves once LISTEN is in effect: anything committed after that reaches `onSignal`. */
  async subscribe(sessionId: string, onSignal: (s: FeedSignal) => void): Promise<() => void> {
    let set = this.#subs.get(sessionId);
    if (!set) this.#subs.set(sessionId, set = new Set());
    set.add(onSignal);
    const unsubscribe = () => {
      const s = this.#subs.get(sessionId);
      s?.delete(onSignal);
      if (s && s.size === 0) this.#subs.delete(sessionId);
    };
    try {
      this.#ready ??= this.database.listen(
        SESSION_EVENTS_CHANNEL,
        (payload) => this.#dispatch(payload),
        () => this.#broadcast({ kind: "poll" }),
      ).then(() => {});
      await this.#ready;
    } catch (e) {
      this.#ready = undefined;
      unsubscribe();
      throw e;
    }
    return unsubscribe;
  }

  get subscribers(): number {
    let n = 0;
    for (const s of this.#subs.values()) n += s.size;
    return n;
  }

  #dispatch(payload: string): void {
    const i = payload.lastIndexOf(":");
    if (i < 0) return;
    const set = this.#subs.get(payload.slice(0, i));
    if (!set) return;
    const tail = payload.slice(i + 1);
    const signal: FeedSignal = tail === "closed" ? { kind: "closed" } : { kind: "event", seq: Number(tail) };
    for (const fn of [...set]) fn(signal);
  }

  #broadcast(signal: FeedSignal): void {
    for (const set of this.#subs.values()) for (const fn of [...set]) fn(signal);
  }
}

const feeds = new WeakMap<Database, SessionEventFeed>();

/** The process-wide feed of a database (created on first use). */
export function sessionEventFeed(database: Database): SessionEventFeed {
  let f = feeds.get(database);
  if (!f) feeds.set(database, f = new SessionEventFeed(database));
  return f;
}

/**
 * Periodic retention sweep for long-running processes (the edge role runs one when RETENTION_DAYS > 0;
 * `deno task retention` does one pass from cron). Idempotent, so several edges sweeping is harmless.
 */
export function startRetentionSweeper(
  database: Database,
  days: number,
  log: {
    info(msg: string, f?: Record<string, unknown>): void;
    error(msg: string, f?: Record<string, unknown>): void;
  },
  periodMs = 3_600_000,
  jobAudioDays = 0,
): { stop(): void } {
  if (!(days > 0) && !(jobAudioDays > 0)) return { stop() {} };
  let running = false;
  const tick = async () => {
    if (running || database.state === "closed") return;
    running = true;
    try {
      const n = await sweepRetention(database, days);
      if (n > 0) log.info("retention: deleted ended sessions", { count: n, days });
      const jobs = await sweepJobAudio(database, jobAudioDays);
      if (jobs > 0) log.info("retention: deleted ended TTS jobs", { count: jobs, days: jobAudioDays });
    } catch (err) {
      log.error("retention sweep failed", { err });
    } finally {
      running = false;
    }
  };
  const first = setTimeout(tick, 10_000);
  const timer = setInterval(tick, periodMs);
  return {
    stop() {
      clearTimeout(first);
      clearInterval(timer);
    },
  };
}
