/**
 * `store=true` on POST /v1/audio/transcriptions: the transcription becomes a session of kind `file` in history,
 * like a live session's — a row of the caller's tenant and key, each confirmed segment a persisted `transcript`
 * event (so it is in transcript pages, captions exports and full-text search), then a `bye` and the row closed
 * with reason `completed`. A transcription that fails or is abandoned midway closes with `error` and keeps what
 * was confirmed. The row is created before the origin starts, so the caller learns its id in the first answer
 * header (`x-parley-session-id`), streamed or not.
 */
import type { Database } from "../db/client.ts";
import { appendEvent, createSessionRow, markActive, markClosed } from "../db/sessions.ts";
import type { TranscribeLine } from "../protocol/openai.ts";
import { type ServerEventBody, SessionOptions } from "../protocol/session_messages.ts";
import { registry } from "../lib/metrics.ts";

const stored = registry.counter(
  "parley_transcriptions_stored_total",
  "Transcriptions kept in history (store=true), by outcome",
);

export class StoredTranscription {
  #ended = false;
  #segments = 0;

  private constructor(private readonly database: Database, readonly sessionId: string) {}

  static async open(
    database: Database,
    o: { tenantId: string; apiKeyId: string | null; nodeId: string; language: string },
  ): Promise<StoredTranscription> {
    const options = SessionOptions.parse({ mode: "transcribe", language: o.language });
    const id = await createSessionRow(database, {
      tenantId: o.tenantId,
      apiKeyId: o.apiKeyId,
      mode: "transcribe",
      options,
      nodeId: o.nodeId,
      kind: "file",
    });
    await markActive(database, id);
    return new StoredTranscription(database, id);
  }

  /** One confirmed segment (file time in ms, as the session's time). */
  async add(s: Extract<TranscribeLine, { type: "segment" }>): Promise<void> {
    const body: ServerEventBody = {
      type: "transcript",
      segment_id: s.id,
      status: "confirmed",
      alternatives: [{ text: s.text, score: s.score }],
      stable_text: s.text,
      unstable_text: "",
      start_ms: s.start_ms,
      end_ms: s.end_ms,
      latency_ms: 0,
      ...(s.words ? { words: s.words.map((w) => ({ ...w, confidence: null })) } : {}),
    };
    await appendEvent(this.database, this.sessionId, body);
    this.#segments++;
  }

  /** The last step, once: `completed` after `done`, `error` otherwise. Idempotent. */
  async end(ok: boolean, message?: string): Promise<void> {
    if (this.#ended) return;
    this.#ended = true;
    const reason = ok ? "completed" : "error";
    stored.inc({ outcome: reason });
    try {
      await appendEvent(this.database, this.sessionId, {
        type: "bye",
        reason,
        ...(message ? { message } : {}),
      });
    } finally {
      await markClosed(this.database, this.sessionId, reason);
    }
  }

  get segments(): number {
    return this.#segments;
  }
}
