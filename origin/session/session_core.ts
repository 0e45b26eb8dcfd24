/**
 * What every live session does whatever carries it (a WebRTC peer in session.ts, a WebSocket stream in
 * stream_session.ts): options and mute, the speech pipeline, room publishing, the event timeline (through
 * database outages), control messages, REST `say`, the media watchdog and the fixed close order. A transport
 * subclass only moves bytes: it tells the core when its event path opens (`goLive`), when media flows
 * (`becomeActive`), hands it inbound frames (`pushFrame`) and control messages (`onControl`), and implements
 * the few hooks below.
 *
 * Events: `emit(body)` runs through the session's SessionTimeline (one promise chain): persist (db/sessions
 * appendEvent assigns seq = last_seq + 1 in a transaction; event_log.ts retries it through a database outage)
 * THEN send, so seq is strictly +1 and every event a client saw is in Postgres. Until the event path is open,
 * persisted events wait in memory.
 *
 * Resume (`resumeAfterSeq` set): the session attaches to the existing row (same id, same seq numbering; the
 * previous transport, if still here, was detached first by the SessionManager). When the new event path
 * opens, inside the emit chain (so nothing else is persisted meanwhile) it reads every persisted event with
 * seq > resumeAfterSeq from Postgres, sends them in order, then drops in-memory pending events already covered
 * by that replay and goes live: no gap, no duplicate.
 *
 * Close reasons from the core: client_hangup (`bye` control message, DELETE through the manager),
 * media_timeout (no inbound audio energy for mediaTimeoutMs while the client has not said it is muted),
 * database_unavailable (the event backlog passed its bound), origin_shutdown, admin, error; transports add
 * their own. close() order: timers → the open speech segment finished (bounded, graceful reasons) → row `closing` → `bye` event (persisted, sent, flushed) → leave the room →
 * pipeline → outbound clock → the transport's own resources (`releaseTransport`) → row `closed`. After close
 * every public call rejects with ClosedError and no event, timer or keep-alive (ping) can bring the session back.
 */
import type { Database } from "../../db/client.ts";
import { eventsAfter, markActive, markClosed, markClosing } from "../../db/sessions.ts";
import { isDatabaseUnavailable } from "../../db/unavailable.ts";
import { ApiError } from "../../lib/errors.ts";
import { ClosedError } from "../../lib/closed_error.ts";
import { log as rootLog, type Logger } from "../../lib/log.ts";
import { registry } from "../../lib/metrics.ts";
import { withTimeout } from "../../lib/with_timeout.ts";
import type { SessionSummary } from "../../protocol/internal_api.ts";
import {
  type CloseReason,
  type ControlMessage,
  parseControlMessage,
  type ServerEvent,
  type ServerEventBody,
  type SessionKind,
  type SessionOptions,
  type SessionState,
} from "../../protocol/session_messages.ts";
import type { InboundFrame, PipelineHost, SayOptions, SpeechPipeline } from "../pipeline/types.ts";
import { SsmlError } from "../../protocol/ssml.ts";
import type { RoomPublisher, RoomPublisherFeed } from "../rooms/room_types.ts";
import { EchoPipeline } from "./echo.ts";
import { DEFAULT_EVENT_LOG_LIMITS, retryWhileUnavailable, SessionEventLog } from "./event_log.ts";
import type { LiveSession } from "./live_session.ts";
import {
  type AudioFrameSink,
  type FrameClock,
  type FrameDriver,
  PacedOutboundAudio,
} from "./outbound_audio.ts";
import { SessionTimeline } from "./session_timeline.ts";

export interface SessionConfig {
  /** Grace period for a transient ICE `disconnected` before closing with ice_disconnected_timeout. */
  iceDisconnectedGraceMs: number;
  /** No inbound audio energy for this long (and not muted) → media_timeout. */
  mediaTimeoutMs: number;
  /** Not connected this long after the answer → ice_failed. */
  connectTimeoutMs: number;
  /** Upper bound on ICE gathering before answering (host candidates take a few ms). */
  iceGatherTimeoutMs: number;
  /** After sending `bye`, wait at most this long for the event path's buffer to drain. */
  byeFlushMs: number;
  /** Extra time after the buffer drained, so the bye leaves the stack before the transport is torn down. */
  byeLingerMs: number;
  /** Peak |sample| above which an inbound frame counts as audio. */
  energyThreshold: number;
  /** Echo mode loop-back delay. */
  echoDelayMs: number;
  /** Bound on any single database step during close (a dead DB must not stop a close). */
  closeStepTimeoutMs: number;
  /**
   * A graceful close first ends the speech segment still open and waits at most this long for its confirmed
   * result (persisted, and sent if the event path is open), so the last words before a hang-up are kept.
   */
  finishSpeechMs: number;
  /** Database outage: max events waiting in memory per session, and max wait of any (event_log.ts). */
  eventBacklogMax: number;
  eventMaxWaitMs: number;
  /** Closing while the database is unreachable: wait this long for the bye to be stored, then send it anyway. */
  byePersistWaitMs: number;
}

export const DEFAULT_SESSION_CONFIG: SessionConfig = {
  iceDisconnectedGraceMs: 10_000,
  mediaTimeoutMs: 15_000,
  connectTimeoutMs: 20_000,
  iceGatherTimeoutMs: 3_000,
  byeFlushMs: 500,
  byeLingerMs: 30,
  energyThreshold: 8,
  echoDelayMs: 200,
  closeStepTimeoutMs: 5_000,
  finishSpeechMs: 3_000,
  eventBacklogMax: DEFAULT_EVENT_LOG_LIMITS.maxBacklog,
  eventMaxWaitMs: DEFAULT_EVENT_LOG_LIMITS.maxWaitMs,
  byePersistWaitMs: 1_000,
};

/** Builds the speech pipeline of a session (helper: origin/pipeline). Default: echo. */
export type PipelineFactory = (
  host: PipelineHost,
  options: SessionOptions,
) => SpeechPipeline | Promise<SpeechPipeline>;

/** How a session publishing into a room gets its feed (origin/rooms/room_host.ts). */
export interface RoomPublishing {
  attachPublisher(roomId: string, tenantId: string, publisher: RoomPublisher): Promise<RoomPublisherFeed>;
}

export interface SessionInit {
  id: string;
  tenantId: string;
  nodeId: string;
  options: SessionOptions;
  database: Database;
  config?: Partial<SessionConfig>;
  pipelineFactory?: PipelineFactory;
  log?: Logger;
  /** Resume: replay persisted events with seq > this before live ones. */
  resumeAfterSeq?: number;
  /** Resume: when the session first became active, so session time (ms) goes on instead of restarting at 0. */
  activeSince?: Date;
  /** Resume: the row's last_seq when attached (a new session starts at 0). */
  lastSeq?: number;
  /** Called once when the session reached `closed` (or was detached). */
  onClosed?: (session: SessionCore) => void;
  clock?: FrameClock;
  /** Keep every outbound frame gap in memory (pacing benchmark). */
  recordOutboundGaps?: boolean;
  /** The origin's rooms, for a session that publishes into one (`options.room`). */
  rooms?: RoomPublishing;
}

/** How the transport wants its paced outbound frames. */
export interface OutboundSinkSpec {
  sink: AudioFrameSink;
  /** Only frames that carry speech (see PacedOutboundAudio). */
  skipIdleFrames?: boolean;
  /** The transport's own frame clock (a phone call's RTP clock pulls frames); default: init.clock. */
  clock?: FrameDriver;
}

const closedTotal = registry.counter("parley_sessions_closed_total", "Sessions closed, by reason");
const controlTotal = registry.counter("parley_session_control_messages_total", "Control messages, by type");

/** Control messages per second per session (sustained) and burst. */
const CONTROL_RATE_PER_S = 50;
const CONTROL_BURST = 100;

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export abstract class SessionCore implements PipelineHost, LiveSession {
  abstract readonly kind: SessionKind;
  readonly id: string;
  readonly sessionId: string;
  readonly tenantId: string;
  readonly nodeId: string;
  readonly config: SessionConfig;
  readonly outbound: PacedOutboundAudio;
  readonly createdAt = new Date();
  activeAt: Date | undefined;
  closedAt: Date | undefined;
  /** Highest seq handed to the event path (tests, resume bookkeeping). */
  lastSentSeq = 0;

  protected readonly log: Logger;
  readonly #db: Database;
  readonly #pipelineFactory: PipelineFactory | undefined;
  readonly #onClosed: ((s: SessionCore) => void) | undefined;
  readonly #resumeAfterSeq: number | undefined;
  readonly #activeSince: Date | undefined;
  #options: SessionOptions;
  #state: SessionState = "connecting";
  #reason: CloseReason | null = null;
  #detached = false;
  #muted = false;
  #pipeline: SpeechPipeline | undefined;
  #mediaTimer: ReturnType<typeof setInterval> | undefined;

  readonly #createdPerf = performance.now();
  #activePerf: number | undefined;
  /** Reference point of the media timeout: max(active, unmute, last frame with energy). */
  #mediaRefAt = 0;

  readonly #rooms: RoomPublishing | undefined;
  /** Set while this session publishes into a room (options.room). */
  #roomFeed: RoomPublisherFeed | undefined;

  readonly #eventLog: SessionEventLog;
  readonly #timeline: SessionTimeline;
  #byeSent = false;
  /** Persisted but not yet sent (event path not open / replay not done). */
  #pending: ServerEvent[] = [];
  #live = false;
  #closing: Promise<void> | undefined;
  /** While a closing session's pipeline finishes its last segment: its results may still be emitted. */
  #finishing = false;
  readonly #closedSignal = Promise.withResolvers<void>();

  constructor(init: SessionInit, outbound: OutboundSinkSpec, component: string) {
    this.id = this.sessionId = init.id;
    this.tenantId = init.tenantId;
    this.nodeId = init.nodeId;
    this.#options = init.options;
    this.#db = init.database;
    this.config = { ...DEFAULT_SESSION_CONFIG, ...init.config };
    this.log = (init.log ?? rootLog).child({ component, session_id: init.id });
    this.#pipelineFactory = init.pipelineFactory;
    this.#onClosed = init.onClosed;
    this.#resumeAfterSeq = init.resumeAfterSeq;
    this.#activeSince = init.activeSince;
    this.#rooms = init.rooms;
    this.#eventLog = new SessionEventLog(
      init.database,
      init.id,
      { maxBacklog: this.config.eventBacklogMax, maxWaitMs: this.config.eventMaxWaitMs },
      this.log,
      (why) => void this.close("database_unavailable", why).catch(() => {}),
      init.lastSeq ?? (init.resumeAfterSeq === undefined ? 0 : -1),
    );
    this.#timeline = new SessionTimeline(this.#db, this.id, (ev) => {
      this.#deliver(ev);
      this.#roomFeed?.onEvent(ev);
    }, this.#eventLog);
    this.outbound = new PacedOutboundAudio({
      source: outbound.sink,
      skipIdleFrames: outbound.skipIdleFrames,
      now: () => this.now(),
      clock: outbound.clock ?? init.clock,
      recordGaps: init.recordOutboundGaps,
    });
  }

  // ---------- transport hooks ----------

  /** The event path can take a message now. */
  protected abstract eventsOpen(): boolean;
  /** Send one serialized event (only called while eventsOpen()). */
  protected abstract sendText(json: string): void;
  /** Bytes queued on the event path and not yet sent. */
  protected abstract eventsBuffered(): number;
  /** performance.now() of the last inbound frame with energy (0 = never). */
  protected abstract lastEnergyAt(): number;
  /** Release everything the transport owns (after the pipeline and the outbound clock). Never throws. */
  protected abstract releaseTransport(reason: CloseReason | null, message?: string): void | Promise<void>;
  /** Transport timers to stop first in close(). */
  protected clearTransportTimers(): void {}
  /**
   * false for a transport without an event path of its own (a phone call: followers read the persisted
   * timeline over SSE): events are stored and fed to the room, never kept waiting in memory.
   */
  protected hasEventPath(): boolean {
    return true;
  }

  // ---------- state ----------

  get state(): SessionState {
    return this.#state;
  }
  get reason(): CloseReason | null {
    return this.#reason;
  }
  get muted(): boolean {
    return this.#muted;
  }
  get options(): SessionOptions {
    return this.#options;
  }
  get pipeline(): SpeechPipeline | undefined {
    return this.#pipeline;
  }
  /** true once detached for a resume (the row lives on in a new transport). */
  get detached(): boolean {
    return this.#detached;
  }
  /** Resolves when the session is closed (or detached). Never rejects. */
  get closed(): Promise<void> {
    return this.#closedSignal.promise;
  }

  now(): number {
    return performance.now() - (this.#activePerf ?? this.#createdPerf);
  }

  summary(): SessionSummary {
    return { session_id: this.id, state: this.#state, reason: this.#reason, node_id: this.nodeId };
  }

  protected isOver(): boolean {
    return this.#state === "closing" || this.#state === "closed";
  }

  /**
   * Build the pipeline (default: echo), then join the room when `options.room` asks for it (RoomBusyError, a
   * 409, when the room has a publisher and refuses a second). Throws ClosedError if the session closed meanwhile.
   */
  protected async createPipeline(o: { joinRoom?: boolean } = {}): Promise<void> {
    const pipeline = this.#pipelineFactory
      ? await this.#pipelineFactory(this, this.#options)
      : new EchoPipeline(this, { delayMs: this.config.echoDelayMs });
    if (this.isOver()) {
      await pipeline.close();
      throw new ClosedError(`session ${this.id}`);
    }
    this.#pipeline = pipeline;
    if (this.#options.room && o.joinRoom !== false) await this.#joinRoom(this.#options.room);
  }

  async #joinRoom(roomId: string): Promise<void> {
    if (!this.#rooms) throw new ApiError(400, "bad_request", "this origin hosts no rooms");
    const feed = await this.#rooms.attachPublisher(roomId, this.tenantId, {
      sessionId: this.id,
      onReplaced: () => {
        this.log.info("room publisher replaced by another session", { room_id: roomId });
        this.outbound.onFrame = undefined;
        this.#roomFeed = undefined;
      },
    });
    if (this.isOver()) {
      feed.detach();
      throw new ClosedError(`session ${this.id}`);
    }
    this.#roomFeed = feed;
    this.outbound.onFrame = (frame) => feed.onOutboundFrame(frame);
    this.log.info("publishing into room", { room_id: roomId });
  }

  /** Hand one inbound frame to the room (if publishing) and the pipeline, only while active. */
  protected pushFrame(frame: InboundFrame): void {
    if (this.#state !== "active") return;
    this.#roomFeed?.onInboundFrame(frame);
    const p = this.#pipeline;
    if (p && p.state === "running") p.push(frame);
  }

  /** Run an event handler; an exception in it ends the session with `error`, never the process. */
  protected guard(fn: () => void | Promise<void>): void {
    try {
      const r = fn();
      if (r instanceof Promise) r.catch((err) => this.fail(err));
    } catch (err) {
      this.fail(err);
    }
  }

  protected fail(err: unknown): void {
    if (this.isOver()) return;
    this.log.error("session handler failed", { err });
    this.close("error", "internal error").catch(() => {});
  }

  /** Media flows: row `active`, `state` event, outbound clock, media watchdog. */
  protected becomeActive(): void {
    this.#state = "active";
    // Session time is ms since the session FIRST became active; a resumed transport continues that clock.
    const nowPerf = performance.now();
    this.#activePerf = this.#activeSince
      ? nowPerf - Math.max(0, Date.now() - this.#activeSince.getTime())
      : nowPerf;
    this.activeAt = this.#activeSince ?? new Date();
    this.#mediaRefAt = nowPerf;
    this.outbound.start();
    // A transport that watches its media itself (a call's RTP timeout) sets mediaTimeoutMs to Infinity.
    if (Number.isFinite(this.config.mediaTimeoutMs)) {
      const interval = Math.max(20, Math.min(1000, this.config.mediaTimeoutMs / 5));
      this.#mediaTimer = setInterval(() => this.#checkMedia(), interval);
    }
    // Persist the transition, then tell the client (the state event goes through the emit chain).
    // The row says `active` before the client is told so (an API reader never sees an older state).
    // During a database outage the mark waits for the database (and the state event with it).
    retryWhileUnavailable(() => markActive(this.#db, this.id), () => !this.isOver())
      .catch((err) => this.log.warn("mark active failed", { err }))
      .finally(() => this.#emitState().catch(() => {}));
  }

  #emitState(extra: Partial<ServerEventBody> = {}): Promise<number> {
    return this.emit({
      type: "state",
      state: this.#state,
      session_id: this.id,
      node_id: this.nodeId,
      muted: this.#muted,
      options: this.#options,
      ...extra,
    } as ServerEventBody);
  }

  #checkMedia(): void {
    if (this.#state !== "active" || this.#muted) return;
    const ref = Math.max(this.#mediaRefAt, this.lastEnergyAt());
    if (performance.now() - ref > this.config.mediaTimeoutMs) {
      this.close("media_timeout", `no inbound audio for ${this.config.mediaTimeoutMs} ms`).catch(() => {});
    }
  }

  /** Token bucket for control messages: every message may cost a database write (its reply event). */
  #controlTokens = CONTROL_BURST;
  #controlRefillAt = performance.now();
  #controlLimitedAt = 0;

  /** One inbound control message (raw text); invalid ones get an `error` event, never a crash. */
  protected onControl(data: unknown): void {
    if (this.isOver()) return; // keep-alives and late messages never resurrect a closing/closed session
    const t = performance.now();
    this.#controlTokens = Math.min(
      CONTROL_BURST,
      this.#controlTokens + (t - this.#controlRefillAt) * CONTROL_RATE_PER_S / 1000,
    );
    this.#controlRefillAt = t;
    if (this.#controlTokens < 1) {
      controlTotal.inc({ type: "rate_limited" });
      if (t - this.#controlLimitedAt > 1000) {
        this.#controlLimitedAt = t;
        this.emit({ type: "error", code: "rate_limited", message: "too many control messages; dropped" })
          .catch(() => {});
      }
      return;
    }
    this.#controlTokens--;
    const parsed = parseControlMessage(data);
    if (!parsed.ok) {
      controlTotal.inc({ type: "invalid" });
      this.emit({ type: "error", code: "invalid_message", message: parsed.error }).catch(() => {});
      return;
    }
    const msg: ControlMessage = parsed.message;
    controlTotal.inc({ type: msg.type });
    switch (msg.type) {
      case "ping":
        this.emit({ type: "pong", id: msg.id, server_time_ms: Date.now() }).catch(() => {});
        break;
      case "bye":
        this.close("client_hangup", "client said bye").catch(() => {});
        break;
      case "mute":
        this.setMuted(msg.muted);
        break;
      case "set_options":
        this.#options = { ...this.#options, ...msg.options };
        this.#pipeline?.setOptions(msg.options);
        this.#emitState().catch(() => {});
        break;
      case "say": {
        const p = this.#pipeline;
        if (!p) break;
        p.say(msg.text, { voice: msg.voice, speed: msg.speed, ssml: msg.ssml }).catch((err) => {
          if (this.isOver()) return;
          const code = err instanceof SsmlError ? "invalid_ssml" : "say_failed";
          this.emit({ type: "error", code, message: String((err as Error)?.message ?? err) }).catch(() => {});
        });
        break;
      }
    }
  }

  /** Mute or unmute the inbound side (control `mute`, a call put on hold) and tell followers. */
  protected setMuted(muted: boolean): void {
    this.#muted = muted;
    // Unmuting restarts the media-timeout window (silence while muted must not count).
    if (!muted) this.#mediaRefAt = performance.now();
    this.#pipeline?.setMuted(muted);
    this.#emitState().catch(() => {});
  }

  /**
   * PipelineHost.emit: assign the next seq, persist, then send. Rejects with ClosedError once the
   * session is closing (the `bye` is the last event).
   */
  emit(event: ServerEventBody): Promise<number> {
    if (this.isOver() && !this.#finishing) return Promise.reject(new ClosedError(`session ${this.id}`));
    // Stored in order, retried through a database outage (event_log.ts), and sent only once stored.
    return this.#timeline.append(event);
  }

  /** `say` from the REST API (routed here by the internal API): speak text on this session. */
  say(text: string, opts: SayOptions = {}): Promise<void> {
    if (this.isOver()) return Promise.reject(new ClosedError(`session ${this.id}`));
    const p = this.#pipeline;
    if (!p) return Promise.reject(new ApiError(409, "conflict", "session is not ready to speak yet"));
    return p.say(text, opts);
  }

  #deliver(ev: ServerEvent): void {
    if (this.#byeSent) return; // the bye went out before it could be stored (#sendBye): it is the last event
    if (!this.hasEventPath()) return;
    if (this.#live && this.eventsOpen()) this.#send(ev);
    else this.#pending.push(ev);
  }

  #send(ev: ServerEvent): void {
    try {
      this.sendText(JSON.stringify(ev));
      this.lastSentSeq = ev.seq;
    } catch (err) {
      this.log.warn("event send failed", { err, seq: ev.seq });
    }
  }

  /** The event path opened: replay (resume) or flush pending, inside the emit chain, then go live. */
  protected goLive(): void {
    if (this.#live) return;
    this.#timeline.run(async () => {
      if (this.#live || !this.eventsOpen()) return;
      if (this.#resumeAfterSeq !== undefined) {
        const missed = await eventsAfter(this.#db, this.id, this.#resumeAfterSeq);
        for (const ev of missed) this.#send(ev);
        const upTo = missed.length ? missed[missed.length - 1].seq : this.#resumeAfterSeq;
        this.#pending = this.#pending.filter((ev) => ev.seq > upTo);
      }
      for (const ev of this.#pending) this.#send(ev);
      this.#pending = [];
      this.#live = true;
    }).catch((err) => this.fail(err));
  }

  /**
   * End the session: idempotent (every call returns the same promise) and never throws. See the header for
   * the fixed release order.
   */
  close(reason: CloseReason, message?: string): Promise<void> {
    this.#closing ??= this.#release({ reason, message, persist: true, bye: true });
    return this.#closing;
  }

  /**
   * Resume takeover: release the transport and everything else WITHOUT a bye and without touching the row (the
   * session lives on in a new transport). Idempotent; a no-op promise if the session is already closing.
   */
  detach(): Promise<void> {
    if (!this.#closing) this.#detached = true;
    this.#closing ??= this.#release({ reason: null, persist: false, bye: false });
    return this.#closing;
  }

  async #release(
    o: { reason: CloseReason | null; message?: string; persist: boolean; bye: boolean },
  ): Promise<void> {
    this.#state = "closing";
    this.#reason = o.reason;
    const step = async (what: string, fn: () => unknown) => {
      try {
        await withTimeout(Promise.resolve().then(fn), this.config.closeStepTimeoutMs, what);
      } catch (err) {
        this.log.warn(`close step failed: ${what}`, { err: String(err) });
      }
    };
    // 1. timers
    this.clearTransportTimers();
    clearInterval(this.#mediaTimer);
    this.#mediaTimer = undefined;
    // 1b. the words still being spoken or decoded when the audio stopped: end the open segment and wait
    // (bounded) for its result. Not on detach (the session goes on elsewhere) nor after an error or a database
    // that is gone (nothing could be stored).
    const finishing = this.#pipeline;
    if (o.bye && finishing?.finish && o.reason !== "error" && o.reason !== "database_unavailable") {
      this.#finishing = true;
      try {
        await withTimeout(finishing.finish(), this.config.finishSpeechMs, "finish speech");
      } catch (err) {
        this.log.warn("last speech segment not finished before close", { err: String(err) });
      } finally {
        this.#finishing = false;
      }
    }
    // 2. row → closing
    if (o.persist) await step("mark closing", () => markClosing(this.#db, this.id, o.reason!));
    // 3. bye (persisted like every event, then sent and flushed) — or just drain the chain on detach
    if (o.bye) {
      await step("bye", () => this.#sendBye(o.reason!, o.message));
    } else {
      await step("drain events", () => this.#timeline.settled());
    }
    // 4. leave the room (its listeners go idle), then the pipeline
    this.outbound.onFrame = undefined;
    this.#roomFeed?.detach();
    this.#roomFeed = undefined;
    const pipeline = this.#pipeline;
    this.#pipeline = undefined;
    if (pipeline) await step("pipeline close", () => pipeline.close());
    // 5. outbound clock, then whatever the transport owns
    this.outbound.close();
    await step("release transport", () => this.releaseTransport(o.reason, o.message));
    this.#pending = [];
    // 6. row → closed. If the database cannot be reached, this finishes in the background once it is back,
    // after the events still waiting for it (the bye included) are stored.
    if (o.persist) {
      await step("mark closed", async () => {
        try {
          await markClosed(this.#db, this.id, o.reason!);
        } catch (err) {
          if (!isDatabaseUnavailable(err)) throw err;
          this.#settleLater(o.reason!);
          throw err;
        }
      });
    }
    this.#state = "closed";
    this.closedAt = new Date();
    if (o.reason) closedTotal.inc({ reason: o.reason });
    this.log.info(o.reason ? "session closed" : "session detached (resumed elsewhere)", {
      reason: o.reason,
      message: o.message,
    });
    // 7. tell the owner
    try {
      this.#onClosed?.(this);
    } catch (err) {
      this.log.warn("onClosed callback failed", { err });
    }
    this.#closedSignal.resolve();
  }

  /**
   * The bye: stored then sent, like every event. If the database cannot store it within byePersistWaitMs (an
   * outage, possibly with events still waiting ahead of it), it is sent anyway with the seq it will be stored
   * under, so the client always learns why the session ended; the log catches up once the database is back.
   */
  async #sendBye(reason: CloseReason, message?: string): Promise<void> {
    const body = { type: "bye", reason, ...(message ? { message } : {}) } as ServerEventBody;
    const seqIfLate = this.#eventLog.nextSeqAfterBacklog();
    const stored = this.#timeline.append(body).then(() => "stored" as const, () => "failed" as const);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<"late">((r) =>
      timer = setTimeout(() => r("late"), this.config.byePersistWaitMs)
    );
    const outcome = await Promise.race([stored, late]);
    clearTimeout(timer);
    if (outcome !== "stored" && !this.#byeSent && seqIfLate > 0) {
      if (this.#live && this.eventsOpen()) {
        this.#byeSent = true;
        this.#send({ ...body, seq: seqIfLate } as ServerEvent);
        this.log.warn("bye sent before it could be stored (database unavailable)", { seq: seqIfLate });
      }
    }
    await this.#flushEvents();
  }

  /** Mark the row closed once the database is back and the events waiting for it are stored. */
  #settleLater(reason: CloseReason): void {
    const db = this.#db;
    void retryWhileUnavailable(
      async () => {
        await this.#timeline.settled();
        return await markClosed(db, this.id, reason);
      },
      () => db.state === "open",
      2000,
    )
      .then(() => this.log.info("session row closed after the database came back", { reason }))
      .catch((err) => this.log.warn("could not mark the session closed", { err: String(err) }));
  }

  async #flushEvents(): Promise<void> {
    if (!this.eventsOpen() || !this.#live) return;
    const deadline = performance.now() + this.config.byeFlushMs;
    while (this.eventsOpen() && this.eventsBuffered() > 0 && performance.now() < deadline) await sleep(5);
    if (this.config.byeLingerMs > 0) await sleep(this.config.byeLingerMs);
  }
}
