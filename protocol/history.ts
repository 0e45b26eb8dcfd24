/**
 * History API response types (edge ⇄ clients, including the web client), defined once as zod schemas: the edge
 * documents them in its OpenAPI document (edge/openapi.ts), tests parse real responses with them, and the web
 * client imports the inferred types (type-only imports: no zod in the browser bundle).
 *
 *   GET /v1/sessions                    → SessionList
 *   GET /v1/sessions/{id}               → SessionSummary
 *   GET /v1/sessions/{id}/transcript    → Transcript (format=json)
 *   GET /v1/sessions/{id}/events        → EventPage (without follow)
 *   GET /v1/transcripts/search          → SearchResult
 */
import { z } from "zod";
import { SESSION_KINDS, SESSION_STATES } from "./session_messages.ts";

export const SessionSummary = z.object({
  id: z.uuid(),
  state: z.enum(SESSION_STATES),
  reason: z.string().nullable().describe("close reason once closing/closed"),
  mode: z.string(),
  kind: z.enum(SESSION_KINDS).describe(
    "webrtc, websocket, sip (a phone call) or file (a stored transcription)",
  ),
  options: z.record(z.string(), z.unknown()),
  node_id: z.string().nullable(),
  last_seq: z.number().int().describe("highest event seq persisted"),
  created_at: z.string(),
  active_at: z.string().nullable(),
  closed_at: z.string().nullable(),
});

export const SessionList = z.object({
  sessions: z.array(SessionSummary),
  next_cursor: z.string().nullable().describe("pass as `cursor` for the next page; null on the last page"),
});

export const TranscriptSegment = z.object({
  seq: z.number().int(),
  segment_id: z.number().int(),
  status: z.enum(["confirmed", "partial"]),
  text: z.string(),
  alternatives: z.array(z.object({ text: z.string(), score: z.number() })),
  start_ms: z.number().int().describe("session time (ms since active) of the segment start"),
  end_ms: z.number().int(),
  latency_ms: z.number().int().nullable(),
  words: z.array(z.object({
    text: z.string(),
    start_ms: z.number().int().describe("session time of the word's start"),
    end_ms: z.number().int(),
    confidence: z.number().nullable().describe("0..1, engine-specific measure; null when unknown"),
  })).nullable().optional().describe("word timings, when the engine aligns words (ctc, sphinx); else null"),
  confidence: z.number().nullable().optional().describe(
    "0..1 confidence of the text, when the engine reports one",
  ),
  created_at: z.string(),
});

export const Transcript = z.object({
  session_id: z.uuid(),
  state: z.enum(SESSION_STATES),
  segments: z.array(TranscriptSegment),
  next_after_seq: z.number().int().nullable().describe(
    "pass as `after_seq` for the next page; null when done",
  ),
});

export const HistoryEvent = z.object({
  seq: z.number().int(),
  type: z.string(),
  created_at: z.string().describe("when the event was persisted (just before it was sent)"),
  event: z.record(z.string(), z.unknown()).describe("the event exactly as sent on the `events` data channel"),
});

export const EventPage = z.object({
  session_id: z.uuid(),
  state: z.enum(SESSION_STATES),
  last_seq: z.number().int(),
  events: z.array(HistoryEvent),
  next_after_seq: z.number().int().nullable(),
});

export const SearchResult = z.object({
  query: z.string(),
  results: z.array(z.object({
    session_id: z.uuid(),
    seq: z.number().int(),
    segment_id: z.number().int(),
    start_ms: z.number().int(),
    end_ms: z.number().int(),
    created_at: z.string(),
    rank: z.number(),
    snippet: z.string().describe("HTML-escaped text with matches in <mark>…</mark>"),
    links: z.object({ session: z.string(), transcript: z.string(), events: z.string() }),
  })),
});

export type SessionSummary = z.infer<typeof SessionSummary>;
export type SessionList = z.infer<typeof SessionList>;
export type TranscriptSegment = z.infer<typeof TranscriptSegment>;
export type Transcript = z.infer<typeof Transcript>;
export type HistoryEvent = z.infer<typeof HistoryEvent>;
export type EventPage = z.infer<typeof EventPage>;
export type SearchResult = z.infer<typeof SearchResult>;
/** One hit of a search. */
export type SearchHit = SearchResult["results"][number];
