/**
 * One WHEP-style listener of a room on the origin: a recvonly client's peer. It owns its RTCPeerConnection,
 * an RTCAudioSource and the track made from it (sent to the client), the client-created `events` data channel
 * (room events out, `select` control messages in), and its timers; `close(reason)` releases all of it, once.
 *
 * The listener does not decide what it plays: the room's controller hands it one frame per tick
 * (`pushFrame`), which goes straight to the source. It measures the gap between consecutive frames it was
 * handed (`parley_room_listener_send_gap_seconds`), the listener-side view of the room clock's pacing.
 *
 * Negotiation follows the session's (origin/session/session.ts): validate the offer (origin/session/sdp.ts),
 * apply it, add the track, answer, wait for host-candidate gathering (non-trickle), answer with every
 * candidate. The offer must carry an audio m-line (the client's recvonly transceiver) and the data channel
 * section (its `events` channel, created before the offer).
 */
import { ApiError } from "../../lib/errors.ts";
import { log as rootLog, type Logger } from "../../lib/log.ts";
import { registry } from "../../lib/metrics.ts";
import {
  type ListenerEvent,
  type ListenerSource,
  parseListenerControl,
} from "../../protocol/room_messages.ts";
import { FRAME_SAMPLES, SAMPLE_RATE } from "../session/outbound_audio.ts";
import { validateOffer } from "../session/sdp.ts";
import { demoteSendStreamThreads } from "../session/wrtc_threads.ts";
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
} from "../session/wrtc.ts";
import { ListenerEventQueue } from "./listener_events.ts";
import { type OpusSendParams, shapeOpusOffer } from "./opus_profile.ts";
import type { FrameSink, ListenerCloseReason, RoomListener } from "./room_types.ts";

const sendGap = registry.histogram(
  "parley_room_listener_send_gap_seconds",
  "Gap between consecutive frames handed to a room listener's RTCAudioSource",
  [0.002, 0.005, 0.008, 0.0095, 0.0105, 0.012, 0.015, 0.02, 0.03, 0.05, 0.1, 0.25],
);
const closedTotal = registry.counter(
  "parley_room_listeners_closed_total",
  "Room listeners closed, by reason",
);
const setupSeconds = registry.histogram(
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

export interface ListenerInit {
  id: string;
  roomId: string;
  selected: ListenerSource;
  config?: Partial<ListenerConfig>;
  log?: Logger;
  /** The client asked for another source on its events channel. */
  onSelect?: (listener: RoomListener, source: ListenerSource) => void;
  /** Called once, when the listener closed (for any reason). */
  onClosed?: (listener: RoomListener, reason: ListenerCloseReason) => void;
  /** Keep every send gap (ms) in memory (benchmarks). */
  recordGaps?: boolean;
  /** Shape this listener's Opus encoder (the room's audio profile); undefined = as the client offered. */
  opus?: OpusSendParams;
  /**
   * Set libwebrtc's real-time send-stream threads of this process to SCHED_OTHER once this listener's
   * stream exists (origin/session/wrtc_threads.ts). Default true.
   */
  demoteThreads?: boolean;
}

export class Listener implements FrameSink, RoomListener {
  readonly id: string;
  readonly roomId: string;
  readonly config: ListenerConfig;
  readonly events: ListenerEventQueue;
  readonly gapsMs: number[] | undefined;
  selected: ListenerSource;
  readonly #log: Logger;
  readonly #onSelect: ListenerInit["onSelect"];
  readonly #onClosed: ListenerInit["onClosed"];
  readonly #opus: OpusSendParams | undefined;
  readonly #demoteThreads: boolean;
  readonly #source: RTCAudioSource;
  readonly #track: MediaStreamTrack;
  #pc: RTCPeerConnection | undefined;
  #channel: RTCDataChannel | undefined;
  #connectTimer: ReturnType<typeof setTimeout> | undefined;
  #graceTimer: ReturnType<typeof setTimeout> | undefined;
  #state: "new" | "connecting" | "connected" | "closed" = "new";
  #reason: ListenerCloseReason | null = null;
  #lastFrameAt = 0;
  /** Frames handed to the source, and the largest gap between two of them (ms). */
  frames = 0;
  maxGapMs = 0;
  /** Time spent inside RTCAudioSource.onData (total and worst call), ms. */
  onDataMs = 0;
  onDataMaxMs = 0;

  constructor(init: ListenerInit) {
    this.id = init.id;
    this.roomId = init.roomId;
    this.selected = init.selected;
    this.config = { ...DEFAULT_LISTENER_CONFIG, ...init.config };
    this.#log = (init.log ?? rootLog).child({ component: "room_listener", listener_id: init.id });
    this.#onSelect = init.onSelect;
    this.#onClosed = init.onClosed;
    this.gapsMs = init.recordGaps ? [] : undefined;
    this.#opus = init.opus;
    this.#demoteThreads = init.demoteThreads ?? true;
    this.events = new ListenerEventQueue({ onOverflow: () => this.close("slow_consumer") });
    this.#source = new AudioSource();
    this.#track = this.#source.createTrack();
  }

  get state(): "new" | "connecting" | "connected" | "closed" {
    return this.#state;
  }
  get reason(): ListenerCloseReason | null {
    return this.#reason;
  }
  /** Exposed for leak tests: after close the track is ended and the peer closed. */
  get trackState(): MediaStreamTrack["readyState"] {
    return this.#track.readyState;
  }
  get peerState(): string {
    return this.#pc?.connectionState ?? "none";
  }
  get timersPending(): boolean {
    return this.#connectTimer !== undefined || this.#graceTimer !== undefined || this.events.flushScheduled;
  }

  /** Negotiate. Resolves with the answer SDP; rejects with ApiError 400 for a bad offer (the listener closes). */
  async start(offerSdp: string): Promise<string> {
    if (this.#state !== "new") throw new Error(`listener ${this.id} already started or closed`);
    this.#state = "connecting";
    const t0 = performance.now();
    try {
      validateOffer(offerSdp);
      const pc = new PeerConnection(PEER_CONFIG);
      this.#pc = pc;
      pc.ondatachannel = (ev) => this.#guard(() => this.#onDataChannel(ev.channel));
      pc.onconnectionstatechange = () => this.#guard(() => this.#onConnectionState());
      pc.oniceconnectionstatechange = () => this.#guard(() => this.#onIceState());
      try {
        const sdp = this.#opus ? shapeOpusOffer(offerSdp, this.#opus) : offerSdp;
        await pc.setRemoteDescription({ type: "offer", sdp });
      } catch (err) {
        throw new ApiError(400, "bad_request", `SDP offer rejected: ${(err as Error).message ?? err}`);
      }
      if (this.#isClosed()) throw new ApiError(409, "conflict", "listener closed during setup");
      pc.addTrack(this.#track);
      await pc.setLocalDescription(await pc.createAnswer());
      if (this.#demoteThreads) demoteSendStreamThreads();
      const complete = await waitIceGathering(pc, this.config.iceGatherTimeoutMs);
      if (this.#isClosed()) throw new ApiError(409, "conflict", "listener closed during setup");
      if (!complete) this.#log.warn("ICE gathering incomplete at timeout; answering with what we have");
      const sdp = pc.localDescription?.sdp;
      if (!sdp) throw new Error("no local description after gathering");
      setupSeconds.observe((performance.now() - t0) / 1000);
      this.#connectTimer = setTimeout(() => {
        this.#connectTimer = undefined;
        if (this.#state === "connecting") this.close("ice_failed");
      }, this.config.connectTimeoutMs);
      return sdp;
    } catch (err) {
      this.close("error");
      if (err instanceof ApiError) throw err;
      this.#log.error("listener setup failed", { err });
      throw new ApiError(500, "internal", "listener setup failed");
    }
  }

  #isClosed(): boolean {
    return this.#state === "closed";
  }

  #guard(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      if (this.#isClosed()) return;
      this.#log.error("listener handler failed", { err });
      this.close("error");
    }
  }

  #onDataChannel(ch: RTCDataChannel): void {
    if (this.#isClosed() || ch.label !== "events" || this.#channel) {
      ch.close();
      return;
    }
    this.#channel = ch;
    ch.onopen = () => this.#guard(() => this.events.attach(ch));
    ch.onclose = () => this.#guard(() => this.close("client_hangup"));
    ch.onmessage = (ev) => this.#guard(() => this.#onControl(ev.data));
    if (ch.readyState === "open") this.events.attach(ch);
  }

  #onControl(data: unknown): void {
    const parsed = parseListenerControl(data);
    if (!parsed.ok) {
      this.events.push({ type: "error", code: "invalid_message", message: parsed.error });
      return;
    }
    const msg = parsed.message;
    if (msg.type === "select") this.#onSelect?.(this, msg.source);
  }

  #onConnectionState(): void {
    const s = this.#pc?.connectionState;
    if (this.#isClosed()) return;
    if (s === "connected" && this.#state === "connecting") {
      this.#state = "connected";
      // The encoder's thread starts with the media: demote it too.
      if (this.#demoteThreads) demoteSendStreamThreads();
      clearTimeout(this.#connectTimer);
      this.#connectTimer = undefined;
    } else if (s === "failed") this.close("ice_failed");
  }

  #onIceState(): void {
    const s = this.#pc?.iceConnectionState;
    if (this.#isClosed()) return;
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

  /** FrameSink: one 10 ms frame from the room's tick. */
  pushFrame(samples: Int16Array): void {
    if (this.#state === "closed") return;
    const t = performance.now();
    if (this.#lastFrameAt > 0) {
      const gap = t - this.#lastFrameAt;
      sendGap.observe(gap / 1000);
      if (gap > this.maxGapMs) this.maxGapMs = gap;
      this.gapsMs?.push(gap);
    }
    this.#lastFrameAt = t;
    this.frames++;
    this.#source.onData({
      samples,
      sampleRate: SAMPLE_RATE,
      bitsPerSample: 16,
      channelCount: 1,
      numberOfFrames: FRAME_SAMPLES,
    });
    const spent = performance.now() - t;
    this.onDataMs += spent;
    if (spent > this.onDataMaxMs) this.onDataMaxMs = spent;
  }

  /** Queue an event for the client (backpressure in ListenerEventQueue). */
  send(ev: ListenerEvent): void {
    if (!this.#isClosed()) this.events.push(ev);
  }

  /**
   * Release everything: timers, event queue, source track, data channel, peer. Idempotent; `onClosed` runs
   * once, after the release.
   */
  close(reason: ListenerCloseReason = "removed"): void {
    if (this.#state === "closed") return;
    this.#state = "closed";
    this.#reason = reason;
    clearTimeout(this.#connectTimer);
    clearTimeout(this.#graceTimer);
    this.#connectTimer = this.#graceTimer = undefined;
    this.events.close();
    try {
      this.#track.stop();
    } catch { /* already stopped */ }
    closePeer(this.#pc, [this.#channel]);
    closedTotal.inc({ reason });
    this.#log.info("listener closed", { room_id: this.roomId, reason, frames: this.frames });
    try {
      this.#onClosed?.(this, reason);
    } catch (err) {
      this.#log.warn("onClosed callback failed", { err });
    }
  }
}
