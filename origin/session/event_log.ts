/**
 * A session's event log writer that rides out database outages. Events are persisted strictly in order (the
 * session's emit chain calls `append` one at a time); an append that fails because the database cannot be
 * reached is retried, with a short backoff, until it succeeds. Meanwhile the session's later events wait behind
 * it in memory, unsent: "persisted before sent, gap-free seq" holds across the outage, and the client gets
 * every event late and in order once the database is back.
 *
 * Bounds (per session): at most `maxBacklog` events waiting, and none waiting longer than `maxWaitMs`. Past
 * either, the log is abandoned (every waiting and later append fails at once with EventLogAbandonedError) and
 * `onAbandon` runs: the session closes with reason `database_unavailable` and tells its client in a `bye`.
 *
 * A failed COMMIT can have committed anyway (the connection died after the server committed, before we heard).
 * Before retrying, the writer reads the session's newest event: if it is this very event at the next seq, it was
 * stored and is not written twice. This is sound because one process writes a session's log at a time.
 */
import { sql } from "drizzle-orm";
import { isDeepStrictEqual } from "node:util";
import type { Database } from "../../db/client.ts";
import { appendEvent } from "../../db/sessions.ts";
import { isDatabaseUnavailable } from "../../db/unavailable.ts";
import type { Logger } from "../../lib/log.ts";
import { registry } from "../../lib/metrics.ts";
import type { ServerEventBody } from "../../protocol/session_messages.ts";

const retries = registry.counter(
  "parley_session_event_persist_retries_total",
  "Event appends retried because the database could not be reached",
);
const abandoned = registry.counter(
  "parley_session_event_log_abandoned_total",
  "Sessions whose event backlog passed its bound during a database outage",
);
const backlogGauge = registry.gauge(
  "parley_session_event_backlog",
  "Events waiting in memory for the database, over all sessions of this origin",
);
let backlogTotal = 0;
backlogGauge.collect(() => backlogTotal);

export interface EventLogLimits {
  /** Max events waiting for the database per session. */
  maxBacklog: number;
  /** Max ms any event may wait for the database. */
  maxWaitMs: number;
}

export const DEFAULT_EVENT_LOG_LIMITS: EventLogLimits = { maxBacklog: 5000, maxWaitMs: 60_000 };

export class EventLogAbandonedError extends Error {
  constructor(sessionId: string, readonly why: string) {
    super(`event log of session ${sessionId} abandoned: ${why}`);
    this.name = "EventLogAbandonedError";
  }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class SessionEventLog {
  /** Events handed to `append` and not yet stored (or failed). */
  #waiting = 0;
  #abandoned: string | undefined;
  /** Highest seq this writer stored (or was told the row had); -1 while unknown. */
  #lastSeq: number;
  /** While the database is unreachable: when the outage began (performance.now()). */
  outageSince: number | undefined;

  constructor(
    private readonly database: Database,
    private readonly sessionId: string,
    private readonly limits: EventLogLimits,
    private readonly log: Logger,
    private readonly onAbandon: (why: string) => void,
    lastSeq = -1,
  ) {
    this.#lastSeq = lastSeq;
  }

  /** Events waiting for the database (the chain's depth). */
  get waiting(): number {
    return this.#waiting;
  }

  get abandoned(): boolean {
    return this.#abandoned !== undefined;
  }

  /** The seq the event queued now would get, when everything before it is stored (-1 if unknown). */
  nextSeqAfterBacklog(): number {
    if (this.#lastSeq < 0) return -1;
    // An abandoned backlog is never stored: the next event takes the seq right after the last stored one.
    return this.#lastSeq + (this.#abandoned ? 0 : this.#waiting) + 1;
  }

  /** Count an event in as waiting (call when it is queued, before the chain reaches it). */
  enqueue(): { queuedAt: number } {
    this.#waiting++;
    backlogTotal++;
    if (this.#waiting > this.limits.maxBacklog) {
      this.abandon(`more than ${this.limits.maxBacklog} events waiting for the database`);
    }
    return { queuedAt: performance.now() };
  }

  /** Persist one queued event (in chain order); resolves with its seq. */
  async append(body: ServerEventBody, ticket: { queuedAt: number }): Promise<number> {
    try {
      let delay = 100;
      let failedOnce = false;
      while (true) {
        if (this.#abandoned) throw new EventLogAbandonedError(this.sessionId, this.#abandoned);
        if (failedOnce) {
          const stored = await this.#storedAlready(body).catch(() => undefined);
          if (stored !== undefined) return this.#stored(stored);
        }
        try {
          return this.#stored(await appendEvent(this.database, this.sessionId, body));
        } catch (err) {
          if (!isDatabaseUnavailable(err)) throw err;
          failedOnce = true;
          retries.inc();
          this.outageSince ??= performance.now();
          const waited = performance.now() - ticket.queuedAt;
          if (waited > this.limits.maxWaitMs) {
            this.abandon(`an event waited ${Math.round(waited)} ms for the database`);
            continue;
          }
          await sleep(delay);
          delay = Math.min(1000, delay * 2);
        }
      }
    } finally {
      this.#waiting--;
      backlogTotal--;
    }
  }

  /** Give up on the backlog (idempotent): waiting and later appends fail; `onAbandon` runs once. */
  abandon(why: string): void {
    if (this.#abandoned) return;
    this.#abandoned = why;
    abandoned.inc();
    this.log.error("event log abandoned: events waiting for the database are dropped", {
      why,
      waiting: this.#waiting,
    });
    try {
      this.onAbandon(why);
    } catch (err) {
      this.log.warn("onAbandon failed", { err });
    }
  }

  #stored(seq: number): number {
    if (this.outageSince !== undefined) {
      this.log.warn("event log caught up after a database outage", {
        outage_ms: Math.round(performance.now() - this.outageSince),
        waiting: this.#waiting - 1,
      });
      this.outageSince = undefined;
    }
    this.#lastSeq = seq;
    return seq;
  }

  /** The seq of `body` if the newest stored event is exactly it at the next seq (an ambiguous COMMIT). */
  async #storedAlready(body: ServerEventBody): Promise<number | undefined> {
    const rows = await this.database.query<{ seq: number | string; payload: unknown }>(sql`
      select seq, payload from session_events where session_id = ${this.sessionId} order by seq desc limit 1`);
    const row = rows[0];
    if (!row) return undefined;
    const seq = Number(row.seq);
    if (this.#lastSeq >= 0 && seq !== this.#lastSeq + 1) return undefined;
    const payload = typeof row.payload === "string" ? JSON.parse(row.payload) : row.payload;
    // Compare as stored: JSON round trip drops undefined fields the in-memory body may carry.
    return isDeepStrictEqual(payload, JSON.parse(JSON.stringify({ ...body, seq }))) ? seq : undefined;
  }
}

/**
 * Run a database write until it succeeds, retrying only "database unavailable" (other errors are thrown), every
 * `everyMs`, while `keepTrying()` says so. For writes that must land eventually (a session's `closed` mark).
 */
export async function retryWhileUnavailable<T>(
  fn: () => Promise<T>,
  keepTrying: () => boolean,
  everyMs = 1000,
): Promise<T> {
  while (true) {
    try {
      return await fn();
    } catch (err) {
      if (!isDatabaseUnavailable(err) || !keepTrying()) throw err;
      await sleep(everyMs);
    }
  }
}
