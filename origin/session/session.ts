/**
 * One live WebRTC session on the origin: one `Session` object per peer, owning everything it creates — the
 * RTCPeerConnection, the inbound RTCAudioSink, the outbound RTCAudioSource + track, the two data channels, its
 * timers and its speech pipeline — and releasing all of it in one idempotent `close(reason)`.
 *
 * Data channels: created by the CLIENT before it makes its offer (so they are negotiated in the offer's
 * m=application section and the server never renegotiates): label `events` (server → client, JSON
 * ServerEvent with `seq`) and `control` (client → server, JSON ControlMessage). The server only handles
 * `ondatachannel`, attaching its handlers at once (before the handshake finishes, so `open` is never missed).
 * Channels with other labels are closed.
 *
 * Events: `emit(body)` runs through the session's SessionTimeline (one promise chain): persist (db/sessions
 * appendEvent assigns seq = last_seq + 1 in a transaction) THEN send, so seq is strictly +1 and every event a client saw is in
 * Postgres. Until the `events` channel is open, persisted events wait in memory.
 *
 * Resume (`resumeAfterSeq` set): this Session attaches to the existing session row (same id, same seq
 * numbering; the previous peer, if still here, was detached first by the SessionManager). When the new
 * `events` channel opens, inside the emit chain (so nothing else is persisted meanwhile) it reads every
 * persisted event with seq > resumeAfterSeq from Postgres, sends them in order, then drops in-memory pending
 * events already covered by that replay and goes live: no gap, no duplicate.
 *
 * Lifecycle: connecting → active (peer connected: row marked active, `state` event, outbound clock starts,
 * media watchdog starts) → closing → closed. Close reasons: client_hangup (`bye` on control, the peer closing
 * its data channels, or DELETE through the manager), ice_failed (ICE/DTLS failed, or not connected within
 * connectTimeoutMs), ice_disconnected_timeout (ICE disconnected longer than iceDisconnectedGraceMs),
 * media_timeout (no inbound audio energy for mediaTimeoutMs while the client has not said it is muted),
 * origin_shutdown, admin, error. close() order: timers → row `closing` → `bye` event (persisted, sent, flushed)
 * → pipeline → outbound clock + source track → inbound sink → data channels → peer connection → row `closed`.
 * After close every public call rejects with ClosedError and no event, timer or keep-alive (ping) can
 * bring the session back.
 */
import type { Database } from "../../db/client.ts";
import { eventsAfter, markActive, markClosed, markClosing } from "../../db/sessions.ts";
import { isDatabaseUnavailable } from "../../db/unavailable.ts";
import { ApiError } from "../../lib/errors.ts";
import { ClosedError } from "../../lib/closed_error.ts";
import { log as rootLog, type Logger } from "../../lib/log.ts";
import { registry } from "../../lib/metrics.ts";
import type { SessionSummary } from "../../protocol/internal_api.ts";
import {
  type CloseReason,
  type ControlMessage,
  parseControlMessage,
  type ServerEvent,
  type ServerEventBody,
  type SessionOptions,
  type SessionState,
} from "../../protocol/session_messages.ts";
import type { PipelineHost, SayOptions, SpeechPipeline } from "../pipeline/types.ts";
import { SsmlError } from "../../protocol/ssml.ts";
import { EchoPipeline } from "./echo.ts";
import { DEFAULT_EVENT_LOG_LIMITS, retryWhileUnavailable, SessionEventLog } from "./event_log.ts";
import { InboundAudio } from "./inbound_audio.ts";
import { type FrameClock, PacedOutboundAudio } from "./outbound_audio.ts";
import type { RoomPublisher, RoomPublisherFeed } from "../rooms/room_types.ts";
import { SessionTimeline } from "./session_timeline.ts";
import type { LiveSession } from "./live_session.ts";
import { withTimeout } from "../../lib/with_timeout.ts";
import {
  closePeer,
  type MediaStreamTrack,
  PEER_CONFIG,
  type RTCAudioSource,
  RTCAudioSource as AudioSource,
  type RTCDataChannel,
  type RTCPeerConnection,
  RTCPeerConnection as PeerConnection,
  waitIceGathering,
} from "./wrtc.ts";

export interface SessionConfig {
  /** Grace period for a transient ICE `disconnected` before closing with ice_disconnected_timeout. */
  iceDisconnectedGraceMs: number;
  /** No inbound audio energy for this long (and not muted) → media_timeout. */
  mediaTimeoutMs: number;
  /** Not connected this long after the answer → ice_failed. */
  connectTimeoutMs: number;
  /** Upper bound on ICE gathering before answering (host candidates take a few ms). */
  iceGatherTimeoutMs: number;
  /** After sending `bye`, wait at most this long for the events channel buffer to drain. */
  byeFlushMs: number;
  /** Extra time after the buffer drained, so the bye leaves the SCTP stack before the peer is torn down. */
  byeLingerMs: number;
  /** Peak |sample| above which an inbound frame counts as audio. */
  energyThreshold: number;
  /** Echo mode loop-back delay. */
  echoDelayMs: number;
  /** Bound on any single database step during close (a dead DB must not stop a close). */
  closeStepTimeoutMs: number;
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
  eventBacklogMax: DEFAULT_EVENT_LOG_LIMITS.maxBacklog,
  eventMaxWaitMs: DEFAULT_EVENT_LOG_LIMITS.maxWaitMs,
  byePersistWaitMs: 1_000,
};

/** Builds the speech pipeline of a session (helper: origin/pipeline). Default: echo. */
export type PipelineFactory = (
  host: PipelineHost,
  options: SessionOptions,
) => SpeechPipeline | Promise<SpeechPipeline>;

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
  onClosed?: (session: Session) => void;
  clock?: FrameClock;
  /** Keep every outbound frame gap in memory (pacing benchmark). */
  recordOutboundGaps?: boolean;
  /** The origin's rooms, for a session that publishes into one (`options.room`). */
  rooms?: RoomPublishing;
}

/** How a session publishing into a room gets its feed (origin/rooms/room_host.ts). */
export interface RoomPublishing {
  attachPublisher(roomId: string, tenantId: string, publisher: RoomPublisher): Promise<RoomPublisherFeed>;
}

const closedTotal = registry.counter("parley_sessions_closed_total", "Sessions closed, by reason");
const setupSeconds = registry.histogram(
  "parley_session_setup_seconds",
  "Origin: offer received → answer ready (ICE gathering complete)",
);
const connectSeconds = registry.histogram(
  "parley_session_connect_seconds",
  "Origin: answer ready → peer connected",
);
const controlTotal = registry.counter("parley_session_control_messages_total", "Control messages, by type");

/** Control messages per second per session (sustained) and burst. */
const CONTROL_RATE_PER_S = 50;
const CONTROL_BURST = 100;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class Session implements PipelineHost, LiveSession {
  readonly kind = "webrtc" as const;
  readonly id: string;
  readonly sessionId: string;
  readonly tenantId: string;
  readonly nodeId: string;
  readonly config: SessionConfig;
  readonly outbound: PacedOutboundAudio;
  readonly createdAt = new Date();
  activeAt: Date | undefined;
  closedAt: Date | undefined;
  /** ms from start() to answer, and from answer to connected (metrics, benches). */
  setupMs: number | undefined;
  connectMs: number | undefined;

  readonly #db: Database;
  readonly #log: Logger;
  readonly #pipelineFactory: PipelineFactory | undefined;
  readonly #onClosed: ((s: Session) => void) | undefined;
  readonly #resumeAfterSeq: number | undefined;
  readonly #activeSince: Date | undefined;
  #options: SessionOptions;
  #state: SessionState = "connecting";
  #reason: CloseReason | null = null;
  #detached = false;
  #started = false;
  #muted = false;

  #pc: RTCPeerConnection | undefined;
  #source: RTCAudioSource;
  #track: MediaStreamTrack | undefined;
  #inbound: InboundAudio | undefined;
  #pipeline: SpeechPipeline | undefined;
  #events: RTCDataChannel | undefined;
  #control: RTCDataChannel | undefined;

  #connectTimer: ReturnType<typeof setTimeout> | undefined;
  #graceTimer: ReturnType<typeof setTimeout> | undefined;
  #mediaTimer: ReturnType<typeof setInterval> | undefined;

  readonly #createdPerf = performance.now();
  #activePerf: number | undefined;
  #answeredPerf: number | undefined;
  /** Reference point of the media timeout: max(active, unmute, last frame with energy). */
  #mediaRefAt = 0;

  readonly #rooms: RoomPublishing | undefined;
  /** Set while this session publishes into a room (options.room). */
  #roomFeed: RoomPublisherFeed | undefined;

  readonly #eventLog: SessionEventLog;
  #byeSent = false;
  readonly #timeline: SessionTimeline;
  /** Persisted but not yet sent (events channel not open / replay not done). */
  #pending: ServerEvent[] = [];
  #live = false;
  #closing: Promise<void> | undefined;
  readonly #closedSignal = Promise.withResolvers<void>();
  /** Highest seq handed to the events channel (tests, resume bookkeeping). */
  lastSentSeq = 0;

  constructor(init: SessionInit) {
    this.id = this.sessionId = init.id;
    this.tenantId = init.tenantId;
    this.nodeId = init.nodeId;
    this.#options = init.options;
    this.#db = init.database;
    this.config = { ...DEFAULT_SESSION_CONFIG, ...init.config };
    this.#log = (init.log ?? rootLog).child({ component: "session", session_id: init.id });
    this.#pipelineFactory = init.pipelineFactory;
    this.#onClosed = init.onClosed;
    this.#resumeAfterSeq = init.resumeAfterSeq;
    this.#activeSince = init.activeSince;
    this.#eventLog = new SessionEventLog(
      init.database,
      init.id,
      { maxBacklog: this.config.eventBacklogMax, maxWaitMs: this.config.eventMaxWaitMs },
      this.#log,
      (why) => void this.close("database_unavailable", why).catch(() => {}),
      init.lastSeq ?? (init.resumeAfterSeq === undefined ? 0 : -1),
    );
    this.#rooms = init.rooms;
    this.#timeline = new SessionTimeline(this.#db, this.id, (ev) => {
      this.#deliver(ev);
      this.#roomFeed?.onEvent(ev);
    }, this.#eventLog);
    this.#source = new AudioSource();
    this.outbound = new PacedOutboundAudio({
      source: this.#source,
      now: () => this.now(),
      clock: init.clock,
      recordGaps: init.recordOutboundGaps,
    });
  }

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
  get inbound(): InboundAudio | undefined {
    return this.#inbound;
  }
  /** true once detached for a resume (the row lives on in a new Session). */
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

  #isOver(): boolean {
    return this.#state === "closing" || this.#state === "closed";
  }

  /**
   * Negotiate: apply the client's offer, add the outbound track, create the answer and wait for ICE gathering
   * to complete (non-trickle: the answer carries every host candidate). Returns the answer SDP.
   * Rejects with ApiError 400 when the offer is refused by WebRTC; the session is then closed (`error`).
   */
  async start(offerSdp: string): Promise<string> {
    if (this.#isOver()) throw new ClosedError(`session ${this.id}`);
    if (this.#started) throw new Error("session already started");
    this.#started = true;
    const t0 = performance.now();
    try {
      const pc = new PeerConnection(PEER_CONFIG);
      this.#pc = pc;
      pc.ondatachannel = (ev) => this.#guard(() => this.#onDataChannel(ev.channel));
      pc.ontrack = (ev) => this.#guard(() => this.#onTrack(ev.track));
      pc.onconnectionstatechange = () => this.#guard(() => this.#onConnectionState());
      pc.oniceconnectionstatechange = () => this.#guard(() => this.#onIceState());
      this.#track = this.#source.createTrack();

      const pipeline = this.#pipelineFactory
        ? await this.#pipelineFactory(this, this.#options)
        : new EchoPipeline(this, { delayMs: this.config.echoDelayMs });
      if (this.#isOver()) {
        await pipeline.close();
        throw new ClosedError(`session ${this.id}`);
      }
      this.#pipeline = pipeline;
      if (this.#options.room) await this.#joinRoom(this.#options.room);

      try {
        await pc.setRemoteDescription({ type: "offer", sdp: offerSdp });
      } catch (err) {
        throw new ApiError(400, "bad_request", `SDP offer rejected: ${(err as Error).message ?? err}`);
      }
      if (this.#isOver()) throw new ClosedError(`session ${this.id}`);
      pc.addTrack(this.#track);
      const answer = await pc.createAnswer();
      await pc.setLocalDescription(answer);
      const complete = await waitIceGathering(pc, this.config.iceGatherTimeoutMs);
      if (this.#isOver()) throw new ClosedError(`session ${this.id}`);
      if (!complete) this.#log.warn("ICE gathering incomplete at timeout; answering with what we have");
      const sdp = pc.localDescription?.sdp;
      if (!sdp) throw new Error("no local description after gathering");
      this.#answeredPerf = performance.now();
      this.setupMs = this.#answeredPerf - t0;
      setupSeconds.observe(this.setupMs / 1000);
      this.#connectTimer = setTimeout(() => {
        if (this.#state === "connecting") {
          this.close("ice_failed", `not connected within ${this.config.connectTimeoutMs} ms`);
        }
      }, this.config.connectTimeoutMs);
      return sdp;
    } catch (err) {
      if (!this.#isOver()) {
        const isClientError = err instanceof ApiError && err.status < 500;
        this.#log[isClientError ? "info" : "error"]("session setup failed", { err });
      }
      await this.close("error", "setup failed");
      if (err instanceof ApiError || err instanceof ClosedError) throw err;
      throw new ApiError(500, "internal", "session setup failed");
    }
  }

  /** Run an event handler; an exception in it ends the session with `error`, never the process. */
  #guard(fn: () => void | Promise<void>): void {
    try {
      const r = fn();
      if (r instanceof Promise) r.catch((err) => this.#fail(err));
    } catch (err) {
      this.#fail(err);
    }
  }

  #fail(err: unknown): void {
    if (this.#isOver()) return;
    this.#log.error("session handler failed", { err });
    this.close("error", "internal error").catch(() => {});
  }

  #onDataChannel(ch: RTCDataChannel): void {
    if (this.#isOver()) {
      ch.close();
      return;
    }
    if (ch.label === "events" && !this.#events) {
      this.#events = ch;
      ch.onopen = () => this.#guard(() => this.#goLive());
      ch.onclose = () => this.#guard(() => this.#onPeerChannelClosed("events"));
      ch.onmessage = null;
      if (ch.readyState === "open") this.#goLive();
    } else if (ch.label === "control" && !this.#control) {
      this.#control = ch;
      ch.onmessage = (ev) => this.#guard(() => this.#onControl(ev.data));
      ch.onclose = () => this.#guard(() => this.#onPeerChannelClosed("control"));
    } else {
      this.#log.info("closing unexpected data channel", { label: ch.label });
      ch.close();
    }
  }

  /** Publish into the room: RoomBusyError (409) when it has a publisher and refuses a second one. */
  async #joinRoom(roomId: string): Promise<void> {
    if (!this.#rooms) throw new ApiError(400, "bad_request", "this origin hosts no rooms");
    const feed = await this.#rooms.attachPublisher(roomId, this.tenantId, {
      sessionId: this.id,
      onReplaced: () => {
        this.#log.info("room publisher replaced by another session", { room_id: roomId });
        this.outbound.onFrame = undefined;
        this.#roomFeed = undefined;
      },
    });
    if (this.#isOver()) {
      feed.detach();
      throw new ClosedError(`session ${this.id}`);
    }
    this.#roomFeed = feed;
    this.outbound.onFrame = (frame) => feed.onOutboundFrame(frame);
    this.#log.info("publishing into room", { room_id: roomId });
  }

  #onPeerChannelClosed(label: string): void {
    // Our own close() detaches handlers first, so reaching here means the peer closed it (SCTP reset/abort):
    // the client hung up (a network loss does not close channels; ICE handles that path).
    if (this.#isOver()) return;
    this.close("client_hangup", `peer closed the ${label} channel`).catch(() => {});
  }

  #onTrack(track: MediaStreamTrack): void {
    if (this.#isOver() || track.kind !== "audio" || this.#inbound) return;
    this.#inbound = new InboundAudio({
      track,
      now: () => this.now(),
      energyThreshold: this.config.energyThreshold,
      onFrame: (frame) => {
        if (this.#state === "active") this.#roomFeed?.onInboundFrame(frame);
        const p = this.#pipeline;
        if (p && p.state === "running" && this.#state === "active") p.push(frame);
      },
    });
  }

  #onConnectionState(): void {
    const pc = this.#pc;
    if (!pc || this.#isOver()) return;
    const s = pc.connectionState;
    if (s === "connected" && this.#state === "connecting") this.#becomeActive();
    else if (s === "failed") this.close("ice_failed", "peer connection failed").catch(() => {});
  }

  #onIceState(): void {
    const pc = this.#pc;
    if (!pc || this.#isOver()) return;
    const s = pc.iceConnectionState;
    if (s === "disconnected") {
      this.#graceTimer ??= setTimeout(() => {
        this.#graceTimer = undefined;
        this.close(
          "ice_disconnected_timeout",
          `ICE disconnected for ${this.config.iceDisconnectedGraceMs} ms`,
        ).catch(() => {});
      }, this.config.iceDisconnectedGraceMs);
    } else if (s === "connected" || s === "completed") {
      clearTimeout(this.#graceTimer);
      this.#graceTimer = undefined;
    } else if (s === "failed") {
      this.close("ice_failed", "ICE failed").catch(() => {});
    }
  }

  #becomeActive(): void {
    this.#state = "active";
    clearTimeout(this.#connectTimer);
    this.#connectTimer = undefined;
    // Session time is ms since the session FIRST became active; a resumed peer continues that clock.
    const nowPerf = performance.now();
    this.#activePerf = this.#activeSince
      ? nowPerf - Math.max(0, Date.now() - this.#activeSince.getTime())
      : nowPerf;
    this.activeAt = this.#activeSince ?? new Date();
    this.connectMs = this.#answeredPerf ? nowPerf - this.#answeredPerf : undefined;
    if (this.connectMs !== undefined) connectSeconds.observe(this.connectMs / 1000);
    this.#mediaRefAt = nowPerf;
    this.outbound.start();
    const interval = Math.max(20, Math.min(1000, this.config.mediaTimeoutMs / 5));
    this.#mediaTimer = setInterval(() => this.#checkMedia(), interval);
    // Persist the transition, then tell the client (the state event goes through the emit chain).
    // The row says `active` before the client is told so (an API reader never sees an older state).
    // During a database outage the mark waits for the database (and the state event with it).
    retryWhileUnavailable(() => markActive(this.#db, this.id), () => !this.#isOver())
      .catch((err) => this.#log.warn("mark active failed", { err }))
      .finally(() => this.#emitState().catch(() => {}));
    this.#log.info("session active", { connect_ms: Math.round(this.connectMs ?? 0) });
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
    const ref = Math.max(this.#mediaRefAt, this.#inbound?.lastEnergyAt ?? 0);
    if (performance.now() - ref > this.config.mediaTimeoutMs) {
      this.close("media_timeout", `no inbound audio for ${this.config.mediaTimeoutMs} ms`).catch(() => {});
    }
  }

  /** Token bucket for control messages: every message may cost a database write (its reply event). */
  #controlTokens = CONTROL_BURST;
  #controlRefillAt = performance.now();
  #controlLimitedAt = 0;

  #onControl(data: unknown): void {
    if (this.#isOver()) return; // keep-alives and late messages never resurrect a closing/closed session
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
        this.#muted = msg.muted;
        // Unmuting restarts the media-timeout window (silence while muted must not count).
        if (!msg.muted) this.#mediaRefAt = performance.now();
        this.#pipeline?.setMuted(msg.muted);
        this.#emitState().catch(() => {});
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
          if (this.#isOver()) return;
          const code = err instanceof SsmlError ? "invalid_ssml" : "say_failed";
          this.emit({ type: "error", code, message: String((err as Error)?.message ?? err) }).catch(() => {});
        });
        break;
      }
    }
  }

  /**
   * PipelineHost.emit: assign the next seq, persist, then send. Rejects with ClosedError once the
   * session is closing (the `bye` is the last event).
   */
  emit(event: ServerEventBody): Promise<number> {
    if (this.#isOver()) return Promise.reject(new ClosedError(`session ${this.id}`));
    return this.#persistAndSend(event);
  }

  #persistAndSend(event: ServerEventBody): Promise<number> {
    // Stored in order, retried through a database outage (event_log.ts), and sent only once stored.
    return this.#timeline.append(event);
  }

  /** `say` from the REST API (routed here by the internal API): speak text on this session. */
  say(text: string, opts: SayOptions = {}): Promise<void> {
    if (this.#isOver()) return Promise.reject(new ClosedError(`session ${this.id}`));
    const p = this.#pipeline;
    if (!p) return Promise.reject(new ApiError(409, "conflict", "session is not ready to speak yet"));
    return p.say(text, opts);
  }

  #deliver(ev: ServerEvent): void {
    if (this.#byeSent) return; // the bye went out before it could be stored (#sendBye): it is the last event
    if (this.#live && this.#events?.readyState === "open") this.#send(ev);
    else this.#pending.push(ev);
  }

  #send(ev: ServerEvent): void {
    try {
      this.#events!.send(JSON.stringify(ev));
      this.lastSentSeq = ev.seq;
    } catch (err) {
      this.#log.warn("event send failed", { err, seq: ev.seq });
    }
  }

  /** The events channel opened: replay (resume) or flush pending, inside the emit chain, then go live. */
  #goLive(): void {
    if (this.#live) return;
    this.#timeline.run(async () => {
      if (this.#live || !this.#events || this.#events.readyState !== "open") return;
      if (this.#resumeAfterSeq !== undefined) {
        const missed = await eventsAfter(this.#db, this.id, this.#resumeAfterSeq);
        for (const ev of missed) this.#send(ev);
        const upTo = missed.length ? missed[missed.length - 1].seq : this.#resumeAfterSeq;
        this.#pending = this.#pending.filter((ev) => ev.seq > upTo);
      }
      for (const ev of this.#pending) this.#send(ev);
      this.#pending = [];
      this.#live = true;
    }).catch((err) => this.#fail(err));
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
   * Resume takeover: release the peer and everything else WITHOUT a bye and without touching the row (the
   * session lives on in a new peer). Idempotent; a no-op promise if the session is already closing.
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
        this.#log.warn(`close step failed: ${what}`, { err: String(err) });
      }
    };
    // 1. timers
    clearTimeout(this.#connectTimer);
    clearTimeout(this.#graceTimer);
    clearInterval(this.#mediaTimer);
    this.#connectTimer = this.#graceTimer = this.#mediaTimer = undefined;
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
    // 5. outbound clock, then the source track
    this.outbound.close();
    try {
      this.#track?.stop();
    } catch { /* already stopped */ }
    // 6. inbound sink
    try {
      this.#inbound?.stop();
    } catch { /* already stopped */ }
    // 7–8. data channels (handlers off first, so their close events are not taken for a hang-up), then the peer
    closePeer(this.#pc, [this.#events, this.#control]);
    this.#pending = [];
    // 9. row → closed. If the database cannot be reached, this finishes in the background once it is back,
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
    this.#log.info(o.reason ? "session closed" : "session detached (resumed elsewhere)", {
      reason: o.reason,
      message: o.message,
    });
    // 10. tell the owner
    try {
      this.#onClosed?.(this);
    } catch (err) {
      this.#log.warn("onClosed callback failed", { err });
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
    const stored = this.#persistAndSend(body).then(() => "stored" as const, () => "failed" as const);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<"late">((r) =>
      timer = setTimeout(() => r("late"), this.config.byePersistWaitMs)
    );
    const outcome = await Promise.race([stored, late]);
    clearTimeout(timer);
    if (outcome !== "stored" && !this.#byeSent && seqIfLate > 0) {
      const ch = this.#events;
      if (this.#live && ch?.readyState === "open") {
        this.#byeSent = true;
        this.#send({ ...body, seq: seqIfLate } as ServerEvent);
        this.#log.warn("bye sent before it could be stored (database unavailable)", { seq: seqIfLate });
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
      .then(() => this.#log.info("session row closed after the database came back", { reason }))
      .catch((err) => this.#log.warn("could not mark the session closed", { err: String(err) }));
  }

  async #flushEvents(): Promise<void> {
    const ch = this.#events;
    if (!ch || ch.readyState !== "open" || !this.#live) return;
    const deadline = performance.now() + this.config.byeFlushMs;
    while (ch.readyState === "open" && ch.bufferedAmount > 0 && performance.now() < deadline) await sleep(5);
    if (this.config.byeLingerMs > 0) await sleep(this.config.byeLingerMs);
  }
}
