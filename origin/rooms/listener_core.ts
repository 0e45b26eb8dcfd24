/**
 * What every room listener does whatever sends it audio (listener.ts: a wrtc peer with its own encoder;
 * forward_listener.ts: a werift peer forwarding shared packets): its state, the `events` queue and the
 * client's `select` messages on it, the connect timeout and the ICE-disconnected grace, and a `close(reason)`
 * that runs once, releases the peer (the subclass's `releasePeer`), counts the reason and tells the room.
 */
import { ApiError } from "../../lib/errors.ts";
import { log as rootLog, type Logger } from "../../lib/log.ts";
import { registry } from "../../lib/metrics.ts";
import {
  type ListenerEvent,
  type ListenerSource,
  parseListenerControl,
} from "../../protocol/room_messages.ts";
import { ListenerEventQueue } from "./listener_events.ts";
import type { ListenerCloseReason, ListenerState, RoomListener } from "./room_types.ts";

const closedTotal = registry.counter(
  "parley_room_listeners_closed_total",
  "Room listeners closed, by reason",
);
export const setupSeconds = registry.histogram(
  "parley_room_listener_setup_seconds",
  "Origin: listener offer received → answer ready (ICE gathering complete)",
);

export interface ListenerConfig {
  connectTimeoutMs: number;
  iceDisconnectedGraceMs: number;
  iceGatherTimeoutMs: number;
}

export const DEFAULT_LISTENER_CONFIG: ListenerConfig = {
  connectTimeoutMs: 20_000,
  iceDisconnectedGraceMs: 10_000,
  iceGatherTimeoutMs: 3_000,
};

export interface ListenerCoreInit {
  id: string;
  roomId: string;
  selected: ListenerSource;
  config?: Partial<ListenerConfig>;
  log?: Logger;
  /** The client asked for another source on its events channel. */
  onSelect?: (listener: RoomListener, source: ListenerSource) => void;
  /** Called once, when the client connected. */
  onConnected?: (listener: RoomListener) => void;
  /** Called once, when the listener closed (for any reason). */
  onClosed?: (listener: RoomListener, reason: ListenerCloseReason) => void;
  /** Keep every send gap (ms) in memory (benchmarks). */
  recordGaps?: boolean;
}

export abstract class ListenerCore implements RoomListener {
  readonly id: string;
  readonly roomId: string;
  readonly config: ListenerConfig;
  readonly events: ListenerEventQueue;
  readonly gapsMs: number[] | undefined;
  selected: ListenerSource;
  protected readonly log: Logger;
  readonly #onSelect: ListenerCoreInit["onSelect"];
  readonly #onClosed: ListenerCoreInit["onClosed"];
  readonly #onConnected: ListenerCoreInit["onConnected"];
  #connectTimer: ReturnType<typeof setTimeout> | undefined;
  #graceTimer: ReturnType<typeof setTimeout> | undefined;
  #state: ListenerState = "new";
  #reason: ListenerCloseReason | null = null;
  /** 10 ms frames sent, and the largest gap between two sends (ms). */
  frames = 0;
  maxGapMs = 0;
  /** Time spent handing audio to the peer (total and worst call), ms. */
  onDataMs = 0;
  onDataMaxMs = 0;

  constructor(init: ListenerCoreInit, logFields: Record<string, unknown> = {}) {
    this.id = init.id;
    this.roomId = init.roomId;
    this.selected = init.selected;
    this.config = { ...DEFAULT_LISTENER_CONFIG, ...init.config };
    this.log = (init.log ?? rootLog).child({
      component: "room_listener",
      listener_id: init.id,
      ...logFields,
    });
    this.#onSelect = init.onSelect;
    this.#onClosed = init.onClosed;
    this.#onConnected = init.onConnected;
    this.gapsMs = init.recordGaps ? [] : undefined;
    this.events = new ListenerEventQueue({ onOverflow: () => this.close("slow_consumer") });
  }

  abstract start(offerSdp: string): Promise<string>;
  abstract get trackState(): string;
  abstract get peerState(): string;
  /** Release the peer, its channel and media (called once, from close). */
  protected abstract releasePeer(): void;
  /** Timers of the subclass still pending. */
  protected get ownTimersPending(): boolean {
    return false;
  }
  /** Stop the subclass's timers (called once, from close, before releasePeer). */
  protected clearOwnTimers(): void {}

  get state(): ListenerState {
    return this.#state;
  }
  get reason(): ListenerCloseReason | null {
    return this.#reason;
  }
  get timersPending(): boolean {
    return this.#connectTimer !== undefined || this.#graceTimer !== undefined || this.ownTimersPending ||
      this.events.flushScheduled;
  }

  protected get isClosed(): boolean {
    return this.#state === "closed";
  }

  /** new → connecting; throws if started twice. */
  protected beginStart(): void {
    if (this.#state !== "new") throw new Error(`listener ${this.id} already started or closed`);
    this.#state = "connecting";
  }

  /**
   * The answer after ICE gathering (`complete` false: the gathering timed out): counted, and the client has
   * connectTimeoutMs to connect from now.
   */
  protected answerReady(sdp: string | undefined, complete: boolean, startedAt: number): string {
    if (this.isClosed) throw new ApiError(409, "conflict", "listener closed during setup");
    if (!complete) this.log.warn("ICE gathering incomplete at timeout; answering with what we have");
    if (!sdp) throw new Error("no local description after gathering");
    setupSeconds.observe((performance.now() - startedAt) / 1000);
    this.#connectTimer = setTimeout(() => {
      this.#connectTimer = undefined;
      if (this.#state === "connecting") this.close("ice_failed");
    }, this.config.connectTimeoutMs);
    return sdp;
  }

  /** Negotiation failed: the listener closes; an ApiError (4xx) passes through, anything else is a 500. */
  protected setupFailed(err: unknown): never {
    this.close("error");
    if (err instanceof ApiError) throw err;
    this.log.error("listener setup failed", { err });
    throw new ApiError(500, "internal", "listener setup failed");
  }

  /** connecting → connected (true the first time). */
  protected markConnected(): boolean {
    if (this.#state !== "connecting") return false;
    this.#state = "connected";
    clearTimeout(this.#connectTimer);
    this.#connectTimer = undefined;
    this.#onConnected?.(this);
    return true;
  }

  /** Run a peer callback; a throw closes the listener ("error") instead of escaping into the peer library. */
  protected guard(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      if (this.isClosed) return;
      this.log.error("listener handler failed", { err });
      this.close("error");
    }
  }

  /** A message on the `events` channel: `select`, or an `error` event back for anything invalid. */
  protected onControl(data: unknown): void {
    const parsed = parseListenerControl(data);
    if (!parsed.ok) {
      this.events.push({ type: "error", code: "invalid_message", message: parsed.error });
      return;
    }
    const msg = parsed.message;
    if (msg.type === "select") this.#onSelect?.(this, msg.source);
  }

  /** ICE state: disconnected starts the grace timer, connected cancels it, failed closes. */
  protected onIceState(s: string | undefined): void {
    if (this.isClosed) return;
    if (s === "disconnected") {
      this.#graceTimer ??= setTimeout(() => {
        this.#graceTimer = undefined;
        this.close("ice_disconnected_timeout");
      }, this.config.iceDisconnectedGraceMs);
    } else if (s === "connected" || s === "completed") {
      clearTimeout(this.#graceTimer);
      this.#graceTimer = undefined;
    } else if (s === "failed") this.close("ice_failed");
  }

  /** Queue an event for the client (backpressure in ListenerEventQueue). */
  send(ev: ListenerEvent): void {
    if (!this.isClosed) this.events.push(ev);
  }

  /**
   * Release everything: timers, event queue, the peer and its media. Idempotent; `onClosed` runs once, after
   * the release.
   */
  close(reason: ListenerCloseReason = "removed"): void {
    if (this.#state === "closed") return;
    this.#state = "closed";
    this.#reason = reason;
    clearTimeout(this.#connectTimer);
    clearTimeout(this.#graceTimer);
    this.#connectTimer = this.#graceTimer = undefined;
    this.clearOwnTimers();
    this.events.close();
    this.releasePeer();
    closedTotal.inc({ reason });
    this.log.info("listener closed", { room_id: this.roomId, reason, frames: this.frames });
    try {
      this.#onClosed?.(this, reason);
    } catch (err) {
      this.log.warn("onClosed callback failed", { err });
    }
  }
}
