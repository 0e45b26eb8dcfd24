/**
 * One room on the origin: at most one publisher (a live Session) and any number of WHEP listeners, up to
 * `maxListeners`. The room owns its RoomController (the per-tick fan-out), its IdleDetector, its backing track
 * cursor and its Listeners; `close()` closes all of them, once.
 *
 * Publisher: `attachPublisher()` returns the feed the Session pushes its mic frames, its outbound (synthesized)
 * frames and its events into. A second publisher gets RoomBusyError (409) unless the room's policy is
 * `replace`, in which case the current feed is revoked (its publisher's `onReplaced` is called) and the new one
 * takes the floor at once. A detached publisher leaves the room idle until a new one joins and speaks.
 *
 * Listeners: `addListener(offer)` negotiates a Listener (a slot is reserved before negotiation, so a flood of
 * concurrent offers cannot exceed the cap: RoomFullError 429), then hands it to the controller. What it hears is
 * only ever decided by the controller; `select()` (or the client's `select` control message) asks for a switch.
 *
 * Events: the publisher's transcript events become `caption`s, its telop events `telop`s; with room state
 * changes they get the room's seq and fan out to every listener's events queue.
 */
import { log as rootLog, type Logger } from "../../lib/log.ts";
import { registry } from "../../lib/metrics.ts";
import type { ListenerSource, RoomEvent, RoomEventBody } from "../../protocol/room_messages.ts";
import type { ServerEvent } from "../../protocol/session_messages.ts";
import type { BackingTrack } from "./backing_track.ts";
import { FRAME_MS } from "../session/outbound_audio.ts";
import { IdleDetector } from "./idle_detector.ts";
import { opusParamsOf } from "./opus_profile.ts";
import { ForwardListener } from "./forward_listener.ts";
import type { ForwardPool } from "./forward_pool.ts";
import { RemoteForwardListener } from "./remote_forward_listener.ts";
import { Listener, type ListenerConfig } from "./listener.ts";
import { PublisherFeed } from "./publisher_feed.ts";
import { RoomController } from "./room_controller.ts";
import {
  DEFAULT_ROOM_OPTIONS,
  type FrameSink,
  type IdleSource,
  type ListenerCloseReason,
  type PacketSink,
  RoomBusyError,
  type RoomDefaultSource,
  RoomFullError,
  type RoomListener,
  RoomNotFoundError,
  type RoomOptions,
  type RoomPublisher,
  type RoomPublisherFeed,
  type SwitchRecord,
  type TickClock,
} from "./room_types.ts";

const idleSeconds = registry.counter(
  "parley_room_idle_seconds_total",
  "Time rooms spent idle (listeners hear the idle source)",
);
const rejectedTotal = registry.counter(
  "parley_room_listeners_rejected_total",
  "Listener offers refused, by reason",
);
const publishersTotal = registry.counter(
  "parley_room_publishers_total",
  "Publisher attach attempts, by result",
);
const eventsTotal = registry.counter(
  "parley_room_events_total",
  "Room events fanned out to listeners, by type",
);

export interface RoomInit {
  id: string;
  tenantId?: string;
  options?: Partial<RoomOptions>;
  /** The idle (or `track` default) backing track; the room owns it from here on. */
  track?: BackingTrack | null;
  clock?: TickClock;
  listenerConfig?: Partial<ListenerConfig>;
  /** Idle detector tuning (tests). */
  idle?: { speechRms?: number };
  log?: Logger;
  onClosed?: (room: Room) => void;
  /** The room's seq goes on after this (a room re-materialized from its stored events). Default 0. */
  initialSeq?: number;
  /** Every room event, in seq order, as it is fanned out (the origin persists them for SSE viewers). */
  onEvent?: (event: RoomEvent) => void;
  /** Listeners keep every send gap in memory (benchmarks). */
  recordGaps?: boolean;
  /** Listeners' real-time libwebrtc send threads → SCHED_OTHER (origin/session/wrtc_threads.ts). Default true. */
  demoteThreads?: boolean;
  /** Where `shared` listeners' peers run (forward_pool.ts); without one they run in this isolate. */
  forwardPool?: ForwardPool;
}

export interface RoomSummary {
  room_id: string;
  name?: string;
  publisher: string | null;
  listeners: number;
  idle: boolean;
  default_source: RoomDefaultSource;
  idle_source: IdleSource;
  idle_after_ms: number;
  max_listeners: number;
  track_id: string | null;
  switches: number;
  idle_ms: number;
  last_seq: number;
}

export class Room {
  readonly id: string;
  readonly tenantId: string | undefined;
  readonly options: RoomOptions;
  readonly controller: RoomController;
  readonly idleDetector: IdleDetector;
  readonly #log: Logger;
  readonly #listenerConfig: Partial<ListenerConfig> | undefined;
  readonly #onClosed: ((room: Room) => void) | undefined;
  readonly #onEvent: ((event: RoomEvent) => void) | undefined;
  readonly #recordGaps: boolean;
  readonly #demoteThreads: boolean;
  readonly #forwardPool: ForwardPool | undefined;
  readonly #listeners = new Map<string, RoomListener>();
  #reserved = 0;
  #track: BackingTrack | null;
  #feed: PublisherFeed | null = null;
  #seq = 0;
  #idleSince: number | null = null;
  #closed = false;
  /** Every switch the controller made (bounded ring for diagnostics and tests). */
  readonly recentSwitches: SwitchRecord[] = [];

  constructor(init: RoomInit) {
    this.id = init.id;
    this.tenantId = init.tenantId;
    this.options = { ...DEFAULT_ROOM_OPTIONS, ...init.options };
    this.#log = (init.log ?? rootLog).child({ component: "room", room_id: init.id });
    this.#listenerConfig = init.listenerConfig;
    this.#onClosed = init.onClosed;
    this.#onEvent = init.onEvent;
    this.#seq = init.initialSeq ?? 0;
    this.#recordGaps = init.recordGaps ?? false;
    this.#demoteThreads = init.demoteThreads ?? true;
    this.#forwardPool = init.forwardPool;
    this.#track = init.track ?? null;
    this.controller = new RoomController({
      roomId: init.id,
      defaultSource: this.options.defaultSource,
      idleSource: this.options.idleSource,
      track: this.#track,
      idle: true,
      crossfadeMs: this.options.crossfadeMs,
      clock: init.clock,
      log: this.#log,
      onSwitches: (s) => this.#onSwitches(s),
      onSourceFrames: (_frame, speaker, voice) => {
        // The detector runs on the room's frame timeline: what listeners hear, not when media reached us.
        if (speaker) this.idleDetector.noteFrame(speaker);
        if (voice) this.idleDetector.noteFrame(voice);
        this.idleDetector.check();
      },
    });
    this.#idleSince = performance.now();
    const controller = this.controller;
    this.idleDetector = new IdleDetector({
      idleAfterMs: this.options.idleAfterMs,
      periodMs: 0,
      speechRms: init.idle?.speechRms,
      now: () => controller.frameIndex * FRAME_MS,
      onChange: (idle) => this.#onIdleChange(idle, performance.now()),
    });
    this.controller.start();
    this.#log.info("room open", { options: this.options, track_id: this.#track?.id ?? null });
  }

  get closed(): boolean {
    return this.#closed;
  }
  get publisher(): string | null {
    return this.#feed?.publisher.sessionId ?? null;
  }
  get listenerCount(): number {
    return this.#listeners.size;
  }
  get lastSeq(): number {
    return this.#seq;
  }

  listener(id: string): RoomListener | undefined {
    return this.#listeners.get(id);
  }
  listeners(): RoomListener[] {
    return [...this.#listeners.values()];
  }

  summary(): RoomSummary {
    return {
      room_id: this.id,
      ...(this.options.name ? { name: this.options.name } : {}),
      publisher: this.publisher,
      listeners: this.#listeners.size,
      idle: this.controller.idle,
      default_source: this.controller.defaultSource,
      idle_source: this.options.idleSource,
      idle_after_ms: this.options.idleAfterMs,
      max_listeners: this.options.maxListeners,
      track_id: this.#track?.id ?? null,
      switches: this.controller.switches,
      idle_ms: Math.round(this.idleDetector.idleMs),
      last_seq: this.#seq,
    };
  }

  // ------------------------------------------------------------------ publisher

  attachPublisher(publisher: RoomPublisher): RoomPublisherFeed {
    if (this.#closed) throw new RoomNotFoundError(`room ${this.id}`);
    const current = this.#feed;
    if (current) {
      if (this.options.publisherPolicy !== "replace") {
        publishersTotal.inc({ result: "rejected" });
        throw new RoomBusyError(this.id, current.publisher.sessionId);
      }
      current.revoke();
      this.#log.info("publisher replaced", {
        previous: current.publisher.sessionId,
        session_id: publisher.sessionId,
      });
      publishersTotal.inc({ result: "replaced" });
      try {
        current.publisher.onReplaced?.();
      } catch (err) {
        this.#log.warn("onReplaced callback failed", { err });
      }
    } else publishersTotal.inc({ result: "attached" });
    const feed = new PublisherFeed(this.id, publisher, {
      speaker: (s) => this.controller.speaker.push(s),
      voice: (s) => this.controller.voice.push(s),
      event: (p, ev) => this.#onPublisherEvent(p, ev),
      detached: (f) => this.#onDetached(f),
    });
    this.#feed = feed;
    this.controller.speaker.clear();
    this.controller.voice.clear();
    this.idleDetector.publisherJoined();
    this.#log.info("publisher attached", { session_id: publisher.sessionId });
    this.#publishState();
    return feed;
  }

  #onDetached(feed: PublisherFeed): void {
    if (this.#feed !== feed || this.#closed) return;
    this.#feed = null;
    this.idleDetector.publisherLeft();
    this.#log.info("publisher detached", { session_id: feed.publisher.sessionId });
    this.#publishState();
  }

  #onPublisherEvent(p: RoomPublisher, ev: ServerEvent): void {
    if (ev.type === "transcript") {
      this.publish({
        type: "caption",
        session_id: p.sessionId,
        segment_id: ev.segment_id,
        status: ev.status,
        text: ev.alternatives[0]?.text ?? "",
        stable_text: ev.stable_text,
        alternatives: ev.alternatives,
        start_ms: ev.start_ms,
        end_ms: ev.end_ms,
      });
    } else if (ev.type === "telop") {
      const { seq: _seq, type: _type, ...rest } = ev;
      this.publish({ type: "telop", session_id: p.sessionId, ...rest });
    }
  }

  #onIdleChange(idle: boolean, at: number): void {
    if (this.#closed) return;
    this.controller.setIdle(idle);
    if (idle) this.#idleSince = at;
    else if (this.#idleSince !== null) {
      idleSeconds.inc(undefined, (at - this.#idleSince) / 1000);
      this.#idleSince = null;
    }
    this.#log.info(idle ? "room idle" : "room active", { publisher: this.publisher });
    this.#publishState();
  }

  // ------------------------------------------------------------------ events

  /** Give a room event the next seq and queue it to every listener. Returns the seq (0 once closed). */
  publish(body: RoomEventBody): number {
    if (this.#closed) return 0;
    const ev = { ...body, seq: ++this.#seq } as RoomEvent;
    eventsTotal.inc({ type: ev.type });
    for (const l of this.#listeners.values()) l.send(ev);
    try {
      this.#onEvent?.(ev);
    } catch (err) {
      this.#log.warn("onEvent callback failed", { err });
    }
    return ev.seq;
  }

  #publishState(): void {
    this.publish({
      type: "room",
      room_id: this.id,
      publisher: this.publisher,
      idle: this.idleDetector.idle,
      default_source: this.controller.defaultSource,
    });
  }

  // ------------------------------------------------------------------ listeners

  /**
   * Negotiate a listener. Throws RoomFullError (429) at the cap, ApiError 400/413 for a bad offer,
   * RoomNotFoundError once the room is closed. Nothing is left behind by a refused offer.
   */
  async addListener(
    offerSdp: string,
    opts: { id?: string; source?: ListenerSource } = {},
  ): Promise<{ listener: RoomListener; answer: string }> {
    if (this.#closed) throw new RoomNotFoundError(`room ${this.id}`);
    if (this.#listeners.size + this.#reserved >= this.options.maxListeners) {
      rejectedTotal.inc({ reason: "room_full" });
      throw new RoomFullError(this.id, this.options.maxListeners);
    }
    this.#reserved++;
    const common = {
      id: opts.id ?? crypto.randomUUID(),
      roomId: this.id,
      selected: opts.source ?? "room",
      config: this.#listenerConfig,
      log: this.#log,
      recordGaps: this.#recordGaps,
      onSelect: (l: RoomListener, source: ListenerSource) => this.select(l.id, source),
      onClosed: (l: RoomListener, reason: ListenerCloseReason) => this.#onListenerClosed(l, reason),
    };
    const listener: RoomListener & (FrameSink | PacketSink) = this.options.audioProfile !== "shared"
      ? new Listener({
        ...common,
        opus: opusParamsOf(this.options.audioProfile),
        demoteThreads: this.#demoteThreads,
      })
      : this.#forwardPool
      ? new RemoteForwardListener({ ...common, worker: this.#forwardPool.pick() })
      : new ForwardListener(common);
    let answer: string;
    try {
      answer = await listener.start(offerSdp);
    } catch (err) {
      rejectedTotal.inc({ reason: "setup_failed" });
      throw err;
    } finally {
      this.#reserved--;
    }
    if (this.#closed) {
      listener.close("room_closed");
      throw new RoomNotFoundError(`room ${this.id}`);
    }
    this.#listeners.set(listener.id, listener);
    this.controller.addListener(listener.id, listener, listener.selected);
    // The client learns the room's state first (its events channel opens after this; the queue holds it).
    listener.send({
      type: "room",
      seq: this.#seq,
      room_id: this.id,
      publisher: this.publisher,
      idle: this.idleDetector.idle,
      default_source: this.controller.defaultSource,
    });
    this.#log.info("listener added", { listener_id: listener.id, source: listener.selected });
    return { listener, answer };
  }

  /** Ask for a switch at the next frame boundary. */
  select(listenerId: string, source: ListenerSource): void {
    const l = this.#listeners.get(listenerId);
    if (!l) throw new RoomNotFoundError(`listener ${listenerId}`);
    l.selected = source;
    this.controller.select(listenerId, source);
  }

  setDefaultSource(source: RoomDefaultSource): void {
    this.controller.setDefaultSource(source);
    this.options.defaultSource = source;
    queueMicrotask(() => this.#publishState());
  }

  /** Replace the room's backing track (the old one is closed). */
  setTrack(track: BackingTrack | null): void {
    const old = this.#track;
    this.#track = track;
    this.controller.setTrack(track);
    if (old && old !== track) old.close();
  }

  /** End one listener (DELETE). Returns false when unknown. */
  removeListener(id: string, reason: ListenerCloseReason = "removed"): boolean {
    const l = this.#listeners.get(id);
    if (!l) return false;
    l.close(reason);
    return true;
  }

  #onListenerClosed(l: RoomListener, reason: ListenerCloseReason): void {
    this.controller.removeListener(l.id);
    if (this.#listeners.get(l.id) === l) {
      this.#listeners.delete(l.id);
      this.#log.info("listener removed", { listener_id: l.id, reason });
    }
  }

  #onSwitches(switches: SwitchRecord[]): void {
    for (const s of switches) {
      if (this.recentSwitches.push(s) > 256) this.recentSwitches.shift();
      const l = this.#listeners.get(s.listenerId);
      l?.send({
        type: "source",
        selected: l.selected,
        playing: s.to,
        frame: s.appliedFrame,
        requested_frame: s.requestedFrame,
        reason: s.reason,
      });
    }
  }

  /** Close every listener, the controller, the idle detector and the track; revoke the publisher. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#feed?.revoke();
    this.#feed = null;
    for (const l of [...this.#listeners.values()]) l.close("room_closed");
    this.#listeners.clear();
    this.controller.close();
    if (this.#idleSince !== null) idleSeconds.inc(undefined, (performance.now() - this.#idleSince) / 1000);
    this.idleDetector.close();
    this.#track?.close();
    this.#track = null;
    this.#log.info("room closed", { switches: this.controller.switches });
    try {
      this.#onClosed?.(this);
    } catch (err) {
      this.#log.warn("onClosed callback failed", { err });
    }
  }
}
