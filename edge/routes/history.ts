/**
 * History API (scope `transcripts:read`, always within the caller's tenant; a browser token bound to one
 * session sees only that session):
 *   GET /v1/sessions                     the tenant's sessions, newest first, keyset pagination (`cursor`)
 *   GET /v1/sessions/:id/transcript      confirmed segments in seq order; JSON, plain text, WebVTT or SRT
 *   GET /v1/sessions/:id/events          the persisted event timeline (replay); `follow=1` → live SSE
 *   GET /v1/transcripts/search           full-text search over confirmed segments, ranked, with snippets
 * The zod schemas below validate the requests and are also what edge/openapi.ts documents; the responses are
 * the types of protocol/history.ts.
 */
import { endOpenStreams, trackOpenStream } from "../open_streams.ts";
import { z } from "zod";
import {
  eventsPage,
  type FeedSignal,
  HIT_END,
  HIT_START,
  listSessions,
  searchSegments,
  type SegmentRow,
  type SessionCursor,
  sessionEventFeed,
  sessionOfTenant,
  sessionProgress,
  transcriptEventsPage,
  transcriptPage,
  transcriptPageJson,
} from "../../db/history.ts";
import { ApiError } from "../../lib/errors.ts";
import { validationError } from "../../lib/http.ts";
import { registry } from "../../lib/metrics.ts";
import { SESSION_STATES } from "../../protocol/session_messages.ts";
import { isRealInstant, PgTimestamp, PgUuid } from "../../protocol/pg_domains.ts";
import type { EventPage, SearchResult, SessionList, Transcript } from "../../protocol/history.ts";
import type { Database } from "../../db/client.ts";
import type { Logger } from "../../lib/log.ts";
import { assertSessionAllowed, type Principal } from "../auth.ts";
import type { EdgeApp, EdgeContext } from "../context.ts";
import { guard } from "../context.ts";

const followStreams = registry.gauge(
  "parley_edge_follow_streams",
  "Open live event streams (GET /v1/sessions/{id}/events?follow=1)",
);

// ------------------------------------------------------------------------------------------------ schemas

const IsoTime = PgTimestamp;
const Seq = z.coerce.number().int().min(0).max(2 ** 31 - 1);
const STATE_LIST = new RegExp(`^(${SESSION_STATES.join("|")})(,(${SESSION_STATES.join("|")}))*$`);
const Flag = z.enum(["true", "false", "1", "0"]);

export const ListSessionsQuery = z.object({
  from: IsoTime.optional().describe("only sessions created at or after this time (ISO 8601)"),
  to: IsoTime.optional().describe("only sessions created before this time (ISO 8601)"),
  state: z.string().regex(STATE_LIST, `comma-separated list of ${SESSION_STATES.join(", ")}`).optional()
    .describe(`filter by state; comma-separated (${SESSION_STATES.join(", ")})`),
  limit: z.coerce.number().int().min(1).max(200).default(50).describe("page size (1–200)"),
  cursor: z.string().min(1).max(200).optional().describe("`next_cursor` of the previous page"),
});

export const TRANSCRIPT_FORMATS = ["json", "text", "vtt", "srt"] as const;
export type TranscriptFormat = typeof TRANSCRIPT_FORMATS[number];
/** Largest page: JSON pages are meant for scrolling, exports for whole transcripts. */
export const MAX_JSON_PAGE = 1000;
export const MAX_EXPORT_SEGMENTS = 100_000;

export const TranscriptQuery = z.object({
  after_seq: Seq.default(0).describe("return segments with seq greater than this"),
  limit: z.coerce.number().int().min(1).max(MAX_EXPORT_SEGMENTS).optional()
    .describe(
      `JSON: page size, default 500, max ${MAX_JSON_PAGE}; text/vtt/srt: default and max ${MAX_EXPORT_SEGMENTS}`,
    ),
  include_partials: Flag.default("false")
    .describe("JSON only: also return partial results (from the event log, when the session persisted them)"),
  format: z.enum(TRANSCRIPT_FORMATS).optional()
    .describe("overrides Accept: json, text (text/plain), vtt (text/vtt), srt (application/x-subrip)"),
  granularity: z.enum(["segment", "word"]).default("segment")
    .describe(
      "vtt/srt: one cue per segment, or one cue per recognised word (segments without word timings stay " +
        "one cue). JSON always carries `words` when the engine aligned them",
    ),
});

export const EventsQuery = z.object({
  after_seq: Seq.default(0).describe(
    "return events with seq greater than this (Last-Event-ID wins if greater)",
  ),
  limit: z.coerce.number().int().min(1).max(MAX_JSON_PAGE).default(500).describe("page size (JSON only)"),
  follow: Flag.default("0").describe(
    "1: a text/event-stream that replays from after_seq and continues live until the session has ended",
  ),
});

export const MAX_QUERY_CHARS = 1000;
export const SearchQuery = z.object({
  q: z.string().trim().min(1, "q is required").max(MAX_QUERY_CHARS)
    .describe(
      'web-search syntax: words (all must match), "quoted phrase", or, -word. Any text is accepted; ' +
        "punctuation is ignored",
    ),
  from: IsoTime.optional().describe("only segments confirmed at or after this time"),
  to: IsoTime.optional().describe("only segments confirmed before this time"),
  limit: z.coerce.number().int().min(1).max(100).default(20).describe("number of results (1–100)"),
});

// ------------------------------------------------------------------------------------------------ helpers

function parseQuery<T extends z.ZodType>(schema: T, query: Record<string, string>): z.output<T> {
  const r = schema.safeParse(query);
  if (!r.success) throw validationError(r.error.issues);
  return r.data;
}

function truthy(flag: string): boolean {
  return flag === "true" || flag === "1";
}

export function encodeCursor(c: SessionCursor): string {
  return btoa(JSON.stringify([c.createdAt, c.id])).replaceAll("+", "-").replaceAll("/", "_").replace(
    /=+$/,
    "",
  );
}

const CursorTuple = z.tuple([
  z.string().regex(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/).refine(isRealInstant),
  PgUuid,
]);

export function decodeCursor(s: string): SessionCursor {
  try {
    const json = atob(s.replaceAll("-", "+").replaceAll("_", "/"));
    const [createdAt, id] = CursorTuple.parse(JSON.parse(json));
    return { createdAt, id };
  } catch {
    throw new ApiError(400, "validation_failed", "cursor: not a cursor returned by this API");
  }
}

async function ownedSession(ctx: EdgeContext, p: Principal, id: string) {
  if (!z.uuid().safeParse(id).success) throw new ApiError(404, "not_found", "no such session");
  assertSessionAllowed(p, id);
  const row = await sessionOfTenant(ctx.database, p.tenantId, id);
  if (!row) throw new ApiError(404, "not_found", "no such session");
  return row;
}

// ------------------------------------------------------------------------------------------------ captions

function pad(n: number, width = 2): string {
  return String(n).padStart(width, "0");
}

/** ms → HH:MM:SS.mmm (WebVTT) or HH:MM:SS,mmm (SRT); hours grow past two digits when needed. */
export function captionTime(ms: number, sep: "." | ","): string {
  const t = Math.max(0, Math.round(ms));
  const h = Math.floor(t / 3_600_000);
  const m = Math.floor(t / 60_000) % 60;
  const s = Math.floor(t / 1000) % 60;
  return `${pad(h)}:${pad(m)}:${pad(s)}${sep}${pad(t % 1000, 3)}`;
}

interface Cue {
  start: number;
  end: number;
  text: string;
  seq: number;
}

export type CueGranularity = "segment" | "word";

/**
 * Caption cues: one line of text each (no blank lines possible), ordered by start, end > start. `word`: one cue
 * per timed word of each segment (segments without word timings keep one cue).
 */
function cues(segments: SegmentRow[], granularity: CueGranularity = "segment"): Cue[] {
  const cue = (start: number, end: number, text: string, seq: number): Cue => ({
    start: Math.max(0, start),
    end: Math.max(end, Math.max(0, start) + 1),
    text: text.replace(/\s+/g, " ").trim(),
    seq,
  });
  return segments
    .flatMap((s) =>
      granularity === "word" && s.words?.length
        ? s.words.map((w) => cue(w.start_ms, w.end_ms, w.text, s.seq))
        : [cue(s.start_ms, s.end_ms, s.text, s.seq)]
    )
    .filter((c) => c.text.length > 0)
    .sort((a, b) => a.start - b.start || a.seq - b.seq);
}

function escapeVtt(text: string): string {
  return text.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;");
}

/** WebVTT file: header, then one cue per segment (identifier = seq) or per word (identifier = seq.n). */
export function toWebVtt(segments: SegmentRow[], granularity: CueGranularity = "segment"): string {
  let out = "WEBVTT\n";
  const n = new Map<number, number>();
  for (const c of cues(segments, granularity)) {
    const k = (n.get(c.seq) ?? 0) + 1;
    n.set(c.seq, k);
    const id = granularity === "word" ? `${c.seq}.${k}` : `${c.seq}`;
    out += `\n${id}\n${captionTime(c.start, ".")} --> ${captionTime(c.end, ".")}\n${escapeVtt(c.text)}\n`;
  }
  return out;
}

/** SubRip file: cues numbered from 1, blank line between cues. */
export function toSrt(segments: SegmentRow[], granularity: CueGranularity = "segment"): string {
  return cues(segments, granularity).map((c, i) =>
    `${i + 1}\n${captionTime(c.start, ",")} --> ${captionTime(c.end, ",")}\n${
      c.text.replaceAll("-->", "->")
    }\n`
  ).join("\n");
}

/** Plain text: one confirmed segment per line, in seq order. */
export function toPlainText(segments: SegmentRow[]): string {
  return segments.map((s) => s.text.replace(/\s+/g, " ").trim()).filter(Boolean).map((t) => t + "\n").join(
    "",
  );
}

const MEDIA: Record<TranscriptFormat, string> = {
  json: "application/json",
  text: "text/plain; charset=utf-8",
  vtt: "text/vtt; charset=utf-8",
  srt: "application/x-subrip; charset=utf-8",
};

const ACCEPTED: Record<string, TranscriptFormat> = {
  "application/json": "json",
  "text/plain": "text",
  "text/vtt": "vtt",
  "application/x-subrip": "srt",
  "text/srt": "srt",
  "application/srt": "srt",
  "*/*": "json",
  "text/*": "text",
  "application/*": "json",
};

/** Best supported media type of an Accept header (by q, then order); JSON when nothing matches. */
export function formatFromAccept(accept: string | undefined): TranscriptFormat {
  if (!accept) return "json";
  let best: { f: TranscriptFormat; q: number; i: number } | undefined;
  accept.split(",").forEach((part, i) => {
    const [type, ...params] = part.trim().toLowerCase().split(";").map((x) => x.trim());
    const f = ACCEPTED[type];
    if (!f) return;
    const qp = params.find((p) => p.startsWith("q="));
    const q = qp ? Number(qp.slice(2)) : 1;
    if (!(q > 0)) return;
    // exact types beat wildcards at equal q
    const rank = q - (type.includes("*") ? 0.0001 : 0);
    if (!best || rank > best.q) best = { f, q: rank, i };
  });
  return best?.f ?? "json";
}

// ------------------------------------------------------------------------------------------------ snippets

function escapeHtml(s: string): string {
  return s.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;").replaceAll('"', "&quot;")
    .replaceAll("'", "&#39;");
}

/** ts_headline output (matches between \u0001 and \u0002) → HTML-escaped text with <mark> tags. */
export function snippetHtml(headline: string): string {
  return escapeHtml(headline.replace(/\s+/g, " ").trim()).replaceAll(HIT_START, "<mark>").replaceAll(
    HIT_END,
    "</mark>",
  );
}

// ------------------------------------------------------------------------------------------------ follow (SSE)

/** End every open follow stream (and room viewer) of this process (tests; the edge does it when it closes). */
export function endAllFollowStreams(): void {
  endOpenStreams();
}
let follows = 0;
function trackStream(stop: () => void): () => void {
  const untrack = trackOpenStream(stop);
  followStreams.set(++follows);
  let tracked = true;
  return () => {
    if (!tracked) return;
    tracked = false;
    untrack();
    followStreams.set(--follows);
  };
}

export interface FollowOptions {
  /** Keep-alive comment and safety poll period. */
  keepAliveMs?: number;
  /** Rows per read. */
  batch?: number;
}

/**
 * A live SSE stream of a session's events after `afterSeq`. Hand-over without gap or duplicate:
 *   1. subscribe to the session's notifications (LISTEN is in effect when this resolves);
 *   2. read the backlog from the table (seq > last sent) and send it;
 *   3. on every notification (and every keep-alive tick, and after a LISTEN reconnect) read again from the
 *      table with seq > last sent. Reads are serialized; a row is sent only if its seq > last sent.
 * Appends commit in seq order (each takes the session row lock), so "seq > last sent" never skips one.
 * The stream ends (`event: end`) once the session is closed and everything up to then was sent; a closed
 * session never gets new events, so the state is read BEFORE the final rows.
 */
export function followResponse(
  database: Database,
  log: Logger,
  sessionId: string,
  afterSeq: number,
  opts: FollowOptions = {},
): Response {
  const enc = new TextEncoder();
  const batch = opts.batch ?? 500;
  let last = afterSeq;
  let done = false;
  let pumping = false;
  let again = false;
  let checkEnd = true;
  let timer: ReturnType<typeof setInterval> | undefined;
  let unsubscribe: (() => void) | undefined;
  let untrack: (() => void) | undefined;
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  // Backpressure: a slow client replaying a long session must not make the edge buffer the whole backlog.
  let roomWaiter: (() => void) | undefined;
  const room = () => {
    roomWaiter?.();
    roomWaiter = undefined;
  };
  const waitForRoom = async () => {
    while (!done && controller.desiredSize !== null && controller.desiredSize <= 0) {
      await new Promise<void>((resolve) => roomWaiter = resolve);
    }
  };

  const send = (s: string) => {
    if (done) return;
    try {
      controller.enqueue(enc.encode(s));
    } catch {
      stop();
    }
  };
  const stop = () => {
    if (done) return;
    done = true;
    room();
    clearInterval(timer);
    unsubscribe?.();
    untrack?.();
    try {
      controller.close();
    } catch { /* already closed or cancelled */ }
  };
  const pump = async (): Promise<void> => {
    if (done) return;
    if (pumping) {
      again = true;
      return;
    }
    pumping = true;
    try {
      do {
        again = false;
        const endCheck = checkEnd;
        checkEnd = false;
        // state first: if it is closed now, every event the session will ever have is already committed
        const progress = endCheck ? await sessionProgress(database, sessionId) : undefined;
        while (!done) {
          const rows = await eventsPage(database, sessionId, last, batch);
          for (const r of rows) {
            if (r.seq <= last) continue;
            send(`id: ${r.seq}\nevent: ${r.type}\ndata: ${JSON.stringify({ ...r.payload, seq: r.seq })}\n\n`);
            last = r.seq;
          }
          if (rows.length < batch) break;
          await waitForRoom();
        }
        if (endCheck && (!progress || progress.state === "closed")) {
          send(
            `event: end\ndata: ${
              JSON.stringify({ reason: progress ? "closed" : "gone", last_seq: last })
            }\n\n`,
          );
          stop();
        }
      } while (again && !done);
    } catch (err) {
      log.error("follow stream failed", { err, session_id: sessionId });
      send(`event: error\ndata: ${JSON.stringify({ code: "internal", message: "stream failed" })}\n\n`);
      stop();
    } finally {
      pumping = false;
    }
  };
  const onSignal = (s: FeedSignal) => {
    if (s.kind === "event" && s.seq <= last) return;
    if (s.kind !== "event") checkEnd = true;
    void pump();
  };

  const body = new ReadableStream<Uint8Array>({
    async start(c) {
      controller = c;
      untrack = trackStream(stop);
      send(`retry: 2000\n: following session ${sessionId} after seq ${afterSeq}\n\n`);
      try {
        unsubscribe = await sessionEventFeed(database).subscribe(sessionId, onSignal);
      } catch (err) {
        log.error("follow subscribe failed", { err, session_id: sessionId });
        send(
          `event: error\ndata: ${JSON.stringify({ code: "unavailable", message: "cannot follow now" })}\n\n`,
        );
        stop();
        return;
      }
      if (done) {
        unsubscribe();
        return;
      }
      timer = setInterval(() => {
        send(": keep-alive\n\n");
        checkEnd = true;
        void pump();
      }, opts.keepAliveMs ?? 15_000);
      void pump();
    },
    pull() {
      room();
    },
    cancel() {
      stop();
    },
  }, new CountQueuingStrategy({ highWaterMark: 256 }));
  return new Response(body, {
    status: 200,
    headers: {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-cache, no-transform",
      "x-accel-buffering": "no",
    },
  });
}

// ------------------------------------------------------------------------------------------------ routes

const EXPORT_READ_BATCH = 2000;

export function historyRoutes(app: EdgeApp, ctx: EdgeContext): void {
  const read = guard(ctx, "transcripts:read");

  app.get("/v1/sessions", read, async (c) => {
    const p = c.get("principal");
    const q = parseQuery(ListSessionsQuery, c.req.query());
    if (q.from && q.to && Date.parse(q.from) >= Date.parse(q.to)) {
      throw new ApiError(400, "validation_failed", "from must be before to");
    }
    const page = await listSessions(ctx.database, {
      tenantId: p.tenantId,
      from: q.from,
      to: q.to,
      states: q.state?.split(","),
      onlyId: p.sessionId,
      limit: q.limit,
      cursor: q.cursor ? decodeCursor(q.cursor) : undefined,
    });
    return c.json(
      { sessions: page.rows, next_cursor: page.next ? encodeCursor(page.next) : null } satisfies SessionList,
    );
  });

  app.get("/v1/sessions/:id/transcript", read, async (c) => {
    const p = c.get("principal");
    const session = await ownedSession(ctx, p, c.req.param("id") ?? "");
    const q = parseQuery(TranscriptQuery, c.req.query());
    const format = q.format ?? formatFromAccept(c.req.header("accept"));
    const partials = truthy(q.include_partials);
    c.header("Vary", "Accept");
    if (format === "json") {
      const limit = q.limit ?? 500;
      if (limit > MAX_JSON_PAGE) {
        throw new ApiError(400, "validation_failed", `limit: at most ${MAX_JSON_PAGE} for JSON pages`);
      }
      if (!partials) {
        // the database renders the segments array; the envelope is built around it (same shape as below)
        const page = await transcriptPageJson(ctx.database, session.id, q.after_seq, limit);
        const head = JSON.stringify({ session_id: session.id, state: session.state }).slice(0, -1);
        return c.body(
          `${head},"segments":${page.json},"next_after_seq":${page.more ? page.lastSeq : null}}`,
          200,
          { "content-type": "application/json" },
        );
      }
      // one extra row tells whether there is a next page
      const rows = await transcriptEventsPage(ctx.database, session.id, q.after_seq, limit + 1);
      const segments = rows.slice(0, limit);
      return c.json(
        {
          session_id: session.id,
          state: session.state,
          segments,
          next_after_seq: rows.length > limit ? segments[segments.length - 1].seq : null,
        } satisfies Transcript,
      );
    }
    if (partials) {
      throw new ApiError(
        400,
        "validation_failed",
        "include_partials: only with format json (captions are final)",
      );
    }
    const limit = q.limit ?? MAX_EXPORT_SEGMENTS;
    const segments: SegmentRow[] = [];
    let after = q.after_seq;
    let more = false;
    while (true) {
      const want = Math.min(EXPORT_READ_BATCH, limit - segments.length);
      const rows = await transcriptPage(ctx.database, session.id, after, want + 1);
      segments.push(...rows.slice(0, want));
      if (rows.length <= want) break;
      after = rows[want - 1].seq;
      if (segments.length >= limit) {
        more = true;
        break;
      }
    }
    if (more) c.header("Parley-Next-After-Seq", String(segments[segments.length - 1].seq));
    const body = format === "vtt"
      ? toWebVtt(segments, q.granularity)
      : format === "srt"
      ? toSrt(segments, q.granularity)
      : toPlainText(segments);
    const ext = format === "text" ? "txt" : format;
    c.header("Content-Disposition", `inline; filename="${session.id}.${ext}"`);
    return c.body(body, 200, { "content-type": MEDIA[format] });
  });

  app.get("/v1/sessions/:id/events", read, async (c) => {
    const p = c.get("principal");
    const session = await ownedSession(ctx, p, c.req.param("id") ?? "");
    const q = parseQuery(EventsQuery, c.req.query());
    let after = q.after_seq;
    const lastEventId = c.req.header("last-event-id");
    if (lastEventId !== undefined) {
      const n = Seq.safeParse(lastEventId.trim());
      if (!n.success) throw new ApiError(400, "validation_failed", "Last-Event-ID: expected an event seq");
      after = Math.max(after, n.data);
    }
    if (truthy(q.follow)) {
      return followResponse(ctx.database, c.get("log"), session.id, after);
    }
    const rows = await eventsPage(ctx.database, session.id, after, q.limit + 1);
    const page = rows.slice(0, q.limit);
    return c.json(
      {
        session_id: session.id,
        state: session.state,
        last_seq: session.last_seq,
        events: page.map((r) => ({
          seq: r.seq,
          type: r.type,
          created_at: r.created_at,
          event: { ...r.payload, seq: r.seq },
        })),
        next_after_seq: rows.length > q.limit ? page[page.length - 1].seq : null,
      } satisfies EventPage,
    );
  });

  app.get("/v1/transcripts/search", read, async (c) => {
    const p = c.get("principal");
    const raw = c.req.query();
    // NUL cannot be stored in Postgres text; any other character is fine for websearch_to_tsquery.
    if (typeof raw.q === "string") raw.q = raw.q.replaceAll("\u0000", " ");
    const q = parseQuery(SearchQuery, raw);
    const hits = await searchSegments(ctx.database, {
      tenantId: p.tenantId,
      q: q.q,
      from: q.from,
      to: q.to,
      onlySessionId: p.sessionId,
      limit: q.limit,
    });
    return c.json(
      {
        query: q.q,
        results: hits.map((h) => ({
          session_id: h.session_id,
          seq: h.seq,
          segment_id: h.segment_id,
          start_ms: h.start_ms,
          end_ms: h.end_ms,
          created_at: h.created_at,
          rank: h.rank,
          snippet: snippetHtml(h.headline),
          links: {
            session: `/v1/sessions/${h.session_id}`,
            transcript: `/v1/sessions/${h.session_id}/transcript?after_seq=${h.seq - 1}&limit=1`,
            events: `/v1/sessions/${h.session_id}/events?after_seq=${h.seq - 1}`,
          },
        })),
      } satisfies SearchResult,
    );
  });
}
