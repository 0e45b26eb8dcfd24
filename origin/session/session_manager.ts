/**
 * The origin's SessionManager: creates, finds and ends the sessions of this origin process (WebRTC peers,
 * WebSocket streams, adopted phone calls), enforces the
 * per-origin cap, and implements `SessionService` (origin/services.ts) so the internal HTTP API can use it
 * directly:
 *
 *   POST   /internal/sessions      → `create(req)` → `{ sdp }` (answer after full ICE gathering, host candidates)
 *   GET    /internal/sessions/:id  → `get(id)` (live sessions and the most recently closed ones)
 *   DELETE /internal/sessions/:id  → `end(id, reason)` (idempotent)
 *   SIGTERM                        → `drain()` then `close("origin_shutdown")` (bye to every peer, close, persist),
 *                                     then `exitCleanly` from wrtc.ts (Deno.exit(0): never a natural exit).
 *
 * Errors: bad input → ApiError 400/404/409/413 (the edge returns them as is); draining or at capacity →
 * OriginBusyError (the HTTP layer answers 503 and the edge may try another origin: this origin did not accept).
 *
 * Resume: `create` with `resume_after_seq` attaches a new peer to an existing, not-closed session row (same id).
 * If the old peer still lives in this process it is `detach()`ed first (released without bye, row untouched),
 * and its emit chain is drained, so the new Session's replay (events after resume_after_seq, from Postgres)
 * covers everything the old peer persisted. See session.ts for the no-gap/no-duplicate argument.
 */
import type { SayOptions } from "../pipeline/types.ts";
import type { Database } from "../../db/client.ts";
import { attachSession, claimSession, sessionRowOfTenant, SessionStoreError } from "../../db/sessions.ts";
import { ApiError } from "../../lib/errors.ts";
import { log as rootLog, type Logger } from "../../lib/log.ts";
import { registry } from "../../lib/metrics.ts";
import type { CreateSessionRequest, SessionSummary } from "../../protocol/internal_api.ts";
import { type CloseReason, SessionOptions } from "../../protocol/session_messages.ts";
import { OriginBusyError, type SessionService } from "../services.ts";
import type { FrameClock } from "./outbound_audio.ts";
import { validateOffer } from "./sdp.ts";
import { type PipelineFactory, type RoomPublishing, Session, type SessionConfig } from "./session.ts";
import type { SessionCore, SessionInit } from "./session_core.ts";
import { StreamSession } from "./stream_session.ts";
import { ClosedError } from "../../lib/closed_error.ts";
import { ensureKeepalive } from "./wrtc.ts";
import type { LiveSession } from "./live_session.ts";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const createdTotal = registry.counter("parley_origin_session_creates_total", "Session creates, by outcome");

export interface SessionManagerOptions {
  database: Database;
  nodeId: string;
  /** Max concurrent sessions (live + being negotiated) on this origin. Default 60. */
  capacity?: number;
  sessionConfig?: Partial<SessionConfig>;
  /** Builds each session's speech pipeline; default: built-in echo for every mode (until origin/pipeline lands). */
  pipelineFactory?: PipelineFactory;
  log?: Logger;
  /** Summaries of this many recently closed sessions stay visible to get()/end(). Default 1000. */
  recentClosedLimit?: number;
  clock?: FrameClock;
  recordOutboundGaps?: boolean;
  /** The origin's rooms (sessions with `options.room` publish into one). */
  rooms?: RoomPublishing & { assertCanPublish(roomId: string, tenantId: string): Promise<void> };
}

export interface CreateResult {
  session_id: string;
  sdp: string;
  resumed: boolean;
}

export class SessionManager implements SessionService {
  readonly nodeId: string;
  readonly capacity: number;
  readonly #db: Database;
  readonly #opts: SessionManagerOptions;
  readonly #log: Logger;
  /** Live sessions of every kind (WebRTC peers created here, phone calls adopted from the SIP gateway). */
  readonly #sessions = new Map<string, LiveSession>();
  readonly #creating = new Set<string>();
  readonly #recent = new Map<string, SessionSummary>();
  #draining = false;
  #closeAll: Promise<void> | undefined;

  constructor(opts: SessionManagerOptions) {
    ensureKeepalive();
    this.#opts = opts;
    this.#db = opts.database;
    this.nodeId = opts.nodeId;
    this.capacity = opts.capacity ?? 60;
    this.#log = (opts.log ?? rootLog).child({ component: "session_manager", node_id: opts.nodeId });
  }

  /** Live sessions plus sessions being negotiated (the load reported in heartbeats). */
  get load(): number {
    let n = this.#creating.size;
    for (const id of this.#sessions.keys()) if (!this.#creating.has(id)) n++;
    return n;
  }

  /** Live sessions (in this process, not yet closed). */
  count(): number {
    return this.#sessions.size;
  }

  get draining(): boolean {
    return this.#draining;
  }

  /** The live WebRTC Session object (tests, in-process tools); undefined once closed. */
  session(id: string): Session | undefined {
    const s = this.#sessions.get(id);
    return s instanceof Session ? s : undefined;
  }

  /** The live WebSocket StreamSession object (tests, in-process tools); undefined once closed. */
  stream(id: string): StreamSession | undefined {
    const s = this.#sessions.get(id);
    return s instanceof StreamSession ? s : undefined;
  }

  /** Live WebRTC sessions. */
  list(): Session[] {
    return [...this.#sessions.values()].filter((s) => s instanceof Session);
  }

  /** Any live session (WebRTC or phone call). */
  live(id: string): LiveSession | undefined {
    return this.#sessions.get(id);
  }

  /**
   * Take a session created elsewhere in this process (a phone call): it counts towards load and capacity, and
   * get/end/say/close reach it like a WebRTC session. OriginBusyError when draining or full.
   */
  adopt(session: LiveSession): void {
    if (this.#draining) throw new OriginBusyError("origin is draining");
    if (this.load >= this.capacity) {
      throw new OriginBusyError(`origin is at capacity (${this.capacity} sessions)`);
    }
    if (this.#sessions.has(session.id)) throw new ApiError(409, "conflict", "session already exists");
    this.#sessions.set(session.id, session);
    session.closed.then(() => this.#onSessionClosed(session));
  }

  /** REST `say` on a live session of this origin. null when unknown here; ClosedError when it is closing. */
  say(id: string, text: string, opts: SayOptions = {}): Promise<SessionSummary | null> {
    const s = this.#sessions.get(id);
    if (!s) {
      return this.#recent.get(id) ? Promise.reject(new ClosedError(`session ${id}`)) : Promise.resolve(null);
    }
    const summary = s.summary();
    if (summary.state === "closing" || summary.state === "closed") {
      return Promise.reject(new ClosedError(`session ${id}`));
    }
    // Accepted once queued: synthesis and playout go on after the response (their events are on the timeline).
    s.say(text, opts).catch((err) => {
      if (!(err instanceof ClosedError)) this.#log.warn("say failed", { session_id: id, err: String(err) });
    });
    return Promise.resolve(summary);
  }

  /** SessionService.create: the internal API's POST body. */
  create(req: CreateSessionRequest): Promise<CreateResult> {
    return this.createSession(
      req.sdp,
      req.options,
      req.tenant_id,
      req.session_id,
      req.resume_after_seq !== undefined ? { last_seq: req.resume_after_seq } : undefined,
    );
  }

  /**
   * Create a session (or resume one) from a client's offer and return the answer SDP. The session row is
   * claimed (or inserted) for this node; with `resume`, the existing row is attached and seq numbering goes on.
   */
  async createSession(
    offerSdp: string,
    options: unknown,
    tenantId: string,
    sessionId: string,
    resume?: { last_seq: number },
  ): Promise<CreateResult> {
    this.#checkAccepting();
    validateOffer(offerSdp);
    const session = await this.#admit(
      { kind: "webrtc", options, tenantId, sessionId, resume },
      (init) => new Session(init),
    );
    try {
      const sdp = await session.start(offerSdp);
      createdTotal.inc({ outcome: resume ? "resumed" : "created" });
      return { session_id: sessionId, sdp, resumed: !!resume };
    } catch (err) {
      if (err instanceof ClosedError) throw new OriginBusyError("session closed during setup");
      createdTotal.inc({ outcome: "rejected" });
      throw err;
    }
  }

  /**
   * Create (or resume) a session carried by a WebSocket stream (GET /internal/listen). Resolves once the
   * session is active and reading its socket; rejects like createSession (ApiError, OriginBusyError).
   */
  async createStream(
    req: { socket: WebSocket; sampleRate?: number; options: unknown; tenantId: string; sessionId: string },
    resume?: { last_seq: number },
  ): Promise<StreamSession> {
    this.#checkAccepting();
    const session = await this.#admit(
      { kind: "websocket", options: req.options, tenantId: req.tenantId, sessionId: req.sessionId, resume },
      (init) => new StreamSession({ ...init, socket: req.socket, sampleRate: req.sampleRate }),
    );
    try {
      await session.start();
    } catch (err) {
      createdTotal.inc({ outcome: "rejected" });
      throw err;
    }
    createdTotal.inc({ outcome: resume ? "resumed" : "created" });
    return session;
  }

  #checkAccepting(): void {
    if (this.#draining) {
      createdTotal.inc({ outcome: "draining" });
      throw new OriginBusyError("origin is draining");
    }
    if (this.load >= this.capacity) {
      createdTotal.inc({ outcome: "full" });
      throw new OriginBusyError(`origin is at capacity (${this.capacity} sessions)`);
    }
  }

  /** Validate, claim (or attach, on resume) the row, and register the transport's session object. */
  async #admit<S extends SessionCore>(
    a: {
      kind: SessionCore["kind"];
      options: unknown;
      tenantId: string;
      sessionId: string;
      resume?: { last_seq: number };
    },
    make: (init: SessionInit) => S,
  ): Promise<S> {
    const { tenantId, sessionId, resume } = a;
    const parsed = SessionOptions.safeParse(a.options ?? {});
    if (!parsed.success) {
      throw new ApiError(
        400,
        "validation_failed",
        parsed.error.issues.map((i) => `${i.path.join(".") || "options"}: ${i.message}`).join("; "),
      );
    }
    if (!UUID.test(sessionId)) throw new ApiError(400, "bad_request", "session_id must be a UUID");
    if (!UUID.test(tenantId)) throw new ApiError(400, "bad_request", "tenant_id must be a UUID");
    if (resume && (!Number.isInteger(resume.last_seq) || resume.last_seq < 0)) {
      throw new ApiError(400, "bad_request", "resume last_seq must be a non-negative integer");
    }
    if (this.#creating.has(sessionId)) throw new ApiError(409, "conflict", "session is being negotiated");
    this.#creating.add(sessionId);
    try {
      let resumeAfterSeq: number | undefined;
      let activeSince: Date | undefined;
      let lastSeq: number | undefined;
      if (resume) {
        const old = this.#sessions.get(sessionId);
        if (old && old.tenantId !== tenantId) {
          throw new ApiError(404, "not_found", "no such session to resume");
        }
        if (old && old.kind !== a.kind) {
          throw new ApiError(409, "conflict", `a ${old.kind} session cannot be resumed as ${a.kind}`);
        }
        let row;
        try {
          row = await sessionRowOfTenant(this.#db, tenantId, sessionId);
        } catch (err) {
          throw storeError(err);
        }
        if (row && row.kind !== a.kind) {
          throw new ApiError(409, "conflict", `a ${row.kind} session cannot be resumed as ${a.kind}`);
        }
        if (old) await (old as SessionCore).detach();
        try {
          row = await attachSession(this.#db, { id: sessionId, tenantId, nodeId: this.nodeId });
        } catch (err) {
          throw storeError(err);
        }
        if (resume.last_seq > Number(row.lastSeq)) {
          throw new ApiError(
            400,
            "bad_request",
            `last_seq ${resume.last_seq} is ahead of the session (${row.lastSeq})`,
          );
        }
        resumeAfterSeq = resume.last_seq;
        lastSeq = Number(row.lastSeq);
        if (row.activeAt) activeSince = new Date(row.activeAt);
      } else {
        if (this.#sessions.has(sessionId)) throw new ApiError(409, "conflict", "session already exists");
        // A room that refuses a second publisher refuses it before anything is stored.
        if (parsed.data.room) {
          if (!this.#opts.rooms) throw new ApiError(400, "bad_request", "this origin hosts no rooms");
          await this.#opts.rooms.assertCanPublish(parsed.data.room, tenantId);
        }
        try {
          await claimSession(this.#db, {
            id: sessionId,
            tenantId,
            nodeId: this.nodeId,
            mode: parsed.data.mode,
            options: parsed.data,
            kind: a.kind,
          });
        } catch (err) {
          throw storeError(err);
        }
      }
      // A create already past the first check finishes even if draining began meanwhile (a recycling origin
      // must not refuse what the edge sent it before it saw `draining`); only a shutdown refuses it here.
      if (this.#closeAll) throw new OriginBusyError("origin is shutting down");
      const session = make({
        id: sessionId,
        tenantId,
        nodeId: this.nodeId,
        options: parsed.data,
        database: this.#db,
        config: this.#opts.sessionConfig,
        pipelineFactory: this.#opts.pipelineFactory,
        log: this.#opts.log,
        resumeAfterSeq,
        activeSince,
        lastSeq,
        clock: this.#opts.clock,
        recordOutboundGaps: this.#opts.recordOutboundGaps,
        rooms: this.#opts.rooms,
        onClosed: (s) => this.#onSessionClosed(s),
      });
      this.#sessions.set(sessionId, session);
      this.#recent.delete(sessionId);
      return session;
    } catch (err) {
      if (!(err instanceof OriginBusyError)) createdTotal.inc({ outcome: "rejected" });
      throw err;
    } finally {
      this.#creating.delete(sessionId);
    }
  }

  #onSessionClosed(s: LiveSession): void {
    if (this.#sessions.get(s.id) === s) this.#sessions.delete(s.id);
    if ("detached" in s && s.detached) return;
    this.#recent.set(s.id, s.summary());
    const limit = this.#opts.recentClosedLimit ?? 1000;
    while (this.#recent.size > limit) this.#recent.delete(this.#recent.keys().next().value!);
  }

  /** Summary of a live or recently closed session of this origin; null when unknown here. */
  get(id: string): SessionSummary | null {
    return this.#sessions.get(id)?.summary() ?? this.#recent.get(id) ?? null;
  }

  /** End one session (idempotent): bye with the reason, release, persist. null when unknown here. */
  async end(id: string, reason: CloseReason): Promise<SessionSummary | null> {
    const s = this.#sessions.get(id);
    if (s) {
      await s.close(reason);
      return s.summary();
    }
    return this.#recent.get(id) ?? null;
  }

  /** Stop accepting sessions (the edge sees `draining` in the next heartbeat). */
  drain(): void {
    this.#draining = true;
  }

  /** End every session with the reason (bye first) and stop accepting new ones. Idempotent. */
  closeAll(reason: CloseReason): Promise<void> {
    this.#draining = true;
    this.#closeAll ??= (async () => {
      // Sessions created while we close (start() in flight) are in the map too and get closed here.
      while (this.#sessions.size > 0 || this.#creating.size > 0) {
        await Promise.all([...this.#sessions.values()].map((s) => s.close(reason)));
        if (this.#creating.size > 0) await new Promise((r) => setTimeout(r, 10));
      }
      this.#log.info("all sessions closed", { reason });
    })();
    return this.#closeAll;
  }

  /** SessionService.close (SIGTERM path): same as closeAll. */
  close(reason: CloseReason): Promise<void> {
    return this.closeAll(reason);
  }
}

function storeError(err: unknown): unknown {
  if (!(err instanceof SessionStoreError)) return err;
  if (err.code === "not_found") return new ApiError(404, "not_found", err.message);
  return new ApiError(409, "conflict", err.message);
}
