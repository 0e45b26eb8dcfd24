/**
 * A listener of a `shared` room: a recvonly client's peer on werift (WebRTC in TypeScript), which sends RTP
 * packets it is given rather than encoding audio itself. The room encodes each program once
 * (program_encoder.ts) and the controller hands every listener the packet of the program it plays
 * (`pushPacket`); the listener stamps its own sequence number and timestamp (so a switch between programs is
 * seamless on the wire) and werift protects and sends it. Per listener that is SRTP and one UDP send per 20 ms
 * packet on the JS thread: no Opus encoder and no native threads per listener, which is what bounded a `full`
 * room (origin/rooms/README.md).
 *
 * It owns the werift peer, the client-created `events` data channel (room events out, `select` in) and its
 * timers; `close(reason)` releases all of it, once. Negotiation: the offer is validated as a session's
 * (origin/session/sdp.ts), applied, answered after host-candidate gathering (non-trickle). The answer makes
 * this side the DTLS server (`a=setup:passive`): as DTLS client werift's handshake with libwebrtc failed on
 * this stack (the peer's Finished did not authenticate), as server it completes.
 */
import { Buffer } from "node:buffer";
import {
  createSelfSignedCertificate,
  RTCPeerConnection,
  RTCRtpCodecParameters,
  RtpHeader,
  RtpPacket,
} from "werift";
import type { RTCDataChannel, RTCRtpSender } from "werift";
import { ApiError } from "../../lib/errors.ts";
import { log as rootLog, type Logger } from "../../lib/log.ts";
import { registry } from "../../lib/metrics.ts";
import {
  type ListenerEvent,
  type ListenerSource,
  parseListenerControl,
} from "../../protocol/room_messages.ts";
import { validateOffer } from "../session/sdp.ts";
import { DEFAULT_LISTENER_CONFIG, type ListenerConfig } from "./listener.ts";
import { ListenerEventQueue } from "./listener_events.ts";
import { applyWeriftDtlsFix } from "./werift_dtls_fix.ts";
import { applyWeriftFastSrtp } from "./werift_fast_srtp.ts";
import { PACKET_SAMPLES } from "./program_encoder.ts";
import type { ListenerCloseReason, ListenerState, PacketSink, RoomListener } from "./room_types.ts";

const packetGap = registry.histogram(
  "parley_room_listener_packet_gap_seconds",
  "Gap between consecutive packets handed to a shared room's listener (20 ms nominal)",
  [0.005, 0.01, 0.015, 0.019, 0.021, 0.025, 0.03, 0.04, 0.05, 0.1, 0.25],
);
const forwarded = registry.counter(
  "parley_room_forwarded_packets_total",
  "RTP packets a shared room's listeners were handed (one encoded packet, sent once per listener)",
);
const closedTotal = registry.counter(
  "parley_room_listeners_closed_total",
  "Room listeners closed, by reason",
);
const setupSeconds = registry.histogram(
  "parley_room_listener_setup_seconds",
  "Origin: listener offer received → answer ready (ICE gathering complete)",
);

/**
 * One DTLS certificate for every listener of the process (ECDSA P-256, as werift makes per peer otherwise):
 * making one costs more than the rest of a join, and a slower answer makes the client retransmit handshake
 * flights.
 */
let certificate: ReturnType<typeof createSelfSignedCertificate> | null = null;
const processCertificate = () =>
  certificate ??= createSelfSignedCertificate({ signature: 3, hash: 4 } as never, 23 as never);

/** Receiver reports come every ~1–5 s; silence this much past the ICE grace means the client is gone. */
const LIVENESS_SLACK_MS = 5_000;

const OPUS = () => new RTCRtpCodecParameters({ mimeType: "audio/opus", clockRate: 48_000, channels: 2 });

export interface ForwardListenerInit {
  id: string;
  roomId: string;
  selected: ListenerSource;
  config?: Partial<ListenerConfig>;
  log?: Logger;
  onSelect?: (listener: RoomListener, source: ListenerSource) => void;
  onClosed?: (listener: RoomListener, reason: ListenerCloseReason) => void;
  /** Keep every packet gap (ms) in memory (benchmarks). */
  recordGaps?: boolean;
}

export class ForwardListener implements RoomListener, PacketSink {
  readonly kind = "packets" as const;
  readonly id: string;
  readonly roomId: string;
  readonly config: ListenerConfig;
  readonly events: ListenerEventQueue;
  readonly gapsMs: number[] | undefined;
  selected: ListenerSource;
  readonly #log: Logger;
  readonly #onSelect: ForwardListenerInit["onSelect"];
  readonly #onClosed: ForwardListenerInit["onClosed"];
  #pc: RTCPeerConnection | undefined;
  #sender: RTCRtpSender | undefined;
  #channel: RTCDataChannel | undefined;
  #connectTimer: ReturnType<typeof setTimeout> | undefined;
  #graceTimer: ReturnType<typeof setTimeout> | undefined;
  #state: ListenerState = "new";
  #reason: ListenerCloseReason | null = null;
  #peerState = "none";
  #seq = Math.floor(Math.random() * 0x10000);
  #timestamp = Math.floor(Math.random() * 0x1_0000_0000);
  #lastPacketAt = 0;
  #liveTimer: ReturnType<typeof setInterval> | undefined;
  /** Last RTCP from the client (its receiver reports), performance.now(). */
  #heardAt = 0;
  /** 10 ms frames sent (two per packet), packets sent, and the largest gap between two packets (ms). */
  frames = 0;
  packets = 0;
  maxGapMs = 0;
  /** Time spent handing packets to werift (total and worst call), ms. */
  onDataMs = 0;
  onDataMaxMs = 0;

  constructor(init: ForwardListenerInit) {
    this.id = init.id;
    this.roomId = init.roomId;
    this.selected = init.selected;
    this.config = { ...DEFAULT_LISTENER_CONFIG, ...init.config };
    this.#log = (init.log ?? rootLog).child({
      component: "room_listener",
      listener_id: init.id,
      path: "forward",
    });
    this.#onSelect = init.onSelect;
    this.#onClosed = init.onClosed;
    this.gapsMs = init.recordGaps ? [] : undefined;
    this.events = new ListenerEventQueue({ onOverflow: () => this.close("slow_consumer") });
  }

  get state(): ListenerState {
    return this.#state;
  }
  get reason(): ListenerCloseReason | null {
    return this.#reason;
  }
  /** After close the sender is stopped ("ended"), as a `full` listener's track. */
  get trackState(): "live" | "ended" {
    return this.#state === "closed" ? "ended" : "live";
  }
  get peerState(): string {
    return this.#peerState;
  }
  get timersPending(): boolean {
    return this.#connectTimer !== undefined || this.#graceTimer !== undefined ||
      this.#liveTimer !== undefined ||
      this.events.flushScheduled;
  }

  /** Negotiate. Resolves with the answer SDP; rejects with ApiError 400 for a bad offer (the listener closes). */
  async start(offerSdp: string): Promise<string> {
    if (this.#state !== "new") throw new Error(`listener ${this.id} already started or closed`);
    this.#state = "connecting";
    const t0 = performance.now();
    try {
      validateOffer(offerSdp);
      // The programs are Opus: a client that cannot take it would connect and hear nothing.
      if (!/^a=rtpmap:\d+ opus\/48000/im.test(offerSdp)) {
        throw new ApiError(
          400,
          "bad_request",
          "SDP offer has no opus/48000 codec (a shared room sends Opus only)",
        );
      }
      // This side answers as DTLS server (see the header), so the client must be able to take the client role.
      if (/^a=setup:passive/im.test(offerSdp)) {
        throw new ApiError(400, "bad_request", "SDP offer has a=setup:passive; offer actpass (or active)");
      }
      applyWeriftDtlsFix();
      applyWeriftFastSrtp();
      // ICE lite, as SFUs run it: host candidates only, the client checks. (A full agent in werift also asks a
      // public STUN server for each peer, with or without iceServers: a DNS lookup and a wait, offline.) An
      // ICE-lite agent sends no consent checks of its own, so liveness is the client's RTCP (below).
      const pc = new RTCPeerConnection({
        codecs: { audio: [OPUS()], video: [] },
        iceServers: [],
        dtls: { keys: await processCertificate() },
        iceLite: true,
        iceUseIpv6: false,
      });
      this.#pc = pc;
      this.#peerState = pc.connectionState;
      pc.onDataChannel.subscribe((ch) => this.#guard(() => this.#onDataChannel(ch)));
      pc.connectionStateChange.subscribe((s) => this.#guard(() => this.#onConnectionState(s)));
      pc.iceConnectionStateChange.subscribe((s) => this.#guard(() => this.#onIceState(s)));
      try {
        await pc.setRemoteDescription({ type: "offer", sdp: offerSdp });
      } catch (err) {
        throw new ApiError(400, "bad_request", `SDP offer rejected: ${(err as Error).message ?? err}`);
      }
      if (this.#isClosed()) throw new ApiError(409, "conflict", "listener closed during setup");
      const audio = pc.getTransceivers().find((t) => t.kind === "audio");
      if (!audio) throw new ApiError(400, "bad_request", "SDP offer has no audio section to send on");
      audio.setDirection("sendonly");
      this.#sender = audio.sender;
      audio.sender.onRtcp.subscribe(() => this.#heardAt = performance.now());
      const answer = await pc.createAnswer();
      await pc.setLocalDescription({
        type: "answer",
        sdp: answer.sdp.replaceAll("a=setup:active", "a=setup:passive"),
      });
      const complete = await this.#gathered(pc);
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

  #gathered(pc: RTCPeerConnection): Promise<boolean> {
    if (pc.iceGatheringState === "complete") return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        sub.unSubscribe();
        resolve(false);
      }, this.config.iceGatherTimeoutMs);
      const sub = pc.iceGatheringStateChange.subscribe((s) => {
        if (s !== "complete") return;
        clearTimeout(timer);
        sub.unSubscribe();
        resolve(true);
      });
    });
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
    const attach = () => this.events.attach(ch);
    ch.stateChanged.subscribe((s) =>
      this.#guard(() => {
        if (s === "open") attach();
        else if (s === "closed") this.close("client_hangup");
      })
    );
    ch.onMessage.subscribe((data) => this.#guard(() => this.#onControl(String(data))));
    if (ch.readyState === "open") attach();
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

  #onConnectionState(s: string): void {
    this.#peerState = s;
    if (this.#isClosed()) return;
    if (s === "connected" && this.#state === "connecting") {
      this.#state = "connected";
      clearTimeout(this.#connectTimer);
      this.#connectTimer = undefined;
      this.#heardAt = performance.now();
      // A client that vanished without DELETE stops sending receiver reports (libwebrtc: every few seconds).
      this.#liveTimer = setInterval(() => {
        if (performance.now() - this.#heardAt > this.config.iceDisconnectedGraceMs + LIVENESS_SLACK_MS) {
          this.close("ice_disconnected_timeout");
        }
      }, 1000);
    } else if (s === "failed") this.close("ice_failed");
    else if (s === "closed") this.close("client_hangup");
  }

  #onIceState(s: string): void {
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

  /** PacketSink: one 20 ms Opus packet of the program this listener plays (shared, not modified). */
  pushPacket(payload: Uint8Array): void {
    if (this.#state !== "connected" || !this.#sender) return;
    const t = performance.now();
    if (this.#lastPacketAt > 0) {
      const gap = t - this.#lastPacketAt;
      packetGap.observe(gap / 1000);
      if (gap > this.maxGapMs) this.maxGapMs = gap;
      this.gapsMs?.push(gap);
    }
    this.#lastPacketAt = t;
    const header = new RtpHeader({
      payloadType: 111,
      sequenceNumber: this.#seq,
      timestamp: this.#timestamp,
      marker: this.packets === 0,
    });
    this.#seq = (this.#seq + 1) & 0xffff;
    this.#timestamp = (this.#timestamp + PACKET_SAMPLES) >>> 0;
    this.packets++;
    this.frames += 2;
    forwarded.inc();
    this.#sender.sendRtp(
      new RtpPacket(header, Buffer.from(payload.buffer, payload.byteOffset, payload.length)),
    )
      .catch((err) => this.#log.debug("rtp send failed", { err }));
    const spent = performance.now() - t;
    this.onDataMs += spent;
    if (spent > this.onDataMaxMs) this.onDataMaxMs = spent;
  }

  /** Queue an event for the client (backpressure in ListenerEventQueue). */
  send(ev: ListenerEvent): void {
    if (!this.#isClosed()) this.events.push(ev);
  }

  /**
   * Release everything: timers, event queue, data channel, peer (its sockets). Idempotent; `onClosed` runs once,
   * after the release.
   */
  close(reason: ListenerCloseReason = "removed"): void {
    if (this.#state === "closed") return;
    this.#state = "closed";
    this.#reason = reason;
    clearTimeout(this.#connectTimer);
    clearTimeout(this.#graceTimer);
    clearInterval(this.#liveTimer);
    this.#connectTimer = this.#graceTimer = this.#liveTimer = undefined;
    this.events.close();
    const pc = this.#pc;
    this.#pc = undefined;
    this.#sender = undefined;
    this.#channel = undefined;
    this.#peerState = "closed";
    if (pc) pc.close().catch((err) => this.#log.debug("peer close failed", { err }));
    closedTotal.inc({ reason });
    this.#log.info("listener closed", { room_id: this.roomId, reason, frames: this.frames });
    try {
      this.#onClosed?.(this, reason);
    } catch (err) {
      this.#log.warn("onClosed callback failed", { err });
    }
  }
}
