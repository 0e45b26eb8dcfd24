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
import { registry } from "../../lib/metrics.ts";
import { validateOffer } from "../session/sdp.ts";
import { ListenerCore, type ListenerCoreInit } from "./listener_core.ts";
import { PACKET_SAMPLES } from "./program_encoder.ts";
import type { PacketSink } from "./room_types.ts";
import { applyWeriftDtlsFix } from "./werift_dtls_fix.ts";
import { applyWeriftFastSrtp } from "./werift_fast_srtp.ts";

const packetGap = registry.histogram(
  "parley_room_listener_packet_gap_seconds",
  "Gap between consecutive packets handed to a shared room's listener (20 ms nominal)",
  [0.005, 0.01, 0.015, 0.019, 0.021, 0.025, 0.03, 0.04, 0.05, 0.1, 0.25],
);
const forwarded = registry.counter(
  "parley_room_forwarded_packets_total",
  "RTP packets a shared room's listeners were handed (one encoded packet, sent once per listener)",
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

export type ForwardListenerInit = ListenerCoreInit;

export class ForwardListener extends ListenerCore implements PacketSink {
  readonly kind = "packets" as const;
  #pc: RTCPeerConnection | undefined;
  #sender: RTCRtpSender | undefined;
  #channel: RTCDataChannel | undefined;
  #peerState = "none";
  #seq = Math.floor(Math.random() * 0x10000);
  #timestamp = Math.floor(Math.random() * 0x1_0000_0000);
  #lastPacketAt = 0;
  #liveTimer: ReturnType<typeof setInterval> | undefined;
  /** Last RTCP from the client (its receiver reports), performance.now(). */
  #heardAt = 0;
  /** Packets sent (two 10 ms frames each). */
  packets = 0;

  constructor(init: ForwardListenerInit) {
    super(init, { path: "forward" });
  }

  /** After close the sender is stopped ("ended"), as a `full` listener's track. */
  get trackState(): "live" | "ended" {
    return this.isClosed ? "ended" : "live";
  }
  get peerState(): string {
    return this.#peerState;
  }
  protected override get ownTimersPending(): boolean {
    return this.#liveTimer !== undefined;
  }

  /** Negotiate. Resolves with the answer SDP; rejects with ApiError 400 for a bad offer (the listener closes). */
  async start(offerSdp: string): Promise<string> {
    this.beginStart();
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
      pc.onDataChannel.subscribe((ch) => this.guard(() => this.#onDataChannel(ch)));
      pc.connectionStateChange.subscribe((s) => this.guard(() => this.#onConnectionState(s)));
      pc.iceConnectionStateChange.subscribe((s) => this.guard(() => this.onIceState(s)));
      try {
        await pc.setRemoteDescription({ type: "offer", sdp: offerSdp });
      } catch (err) {
        throw new ApiError(400, "bad_request", `SDP offer rejected: ${(err as Error).message ?? err}`);
      }
      if (this.isClosed) throw new ApiError(409, "conflict", "listener closed during setup");
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
      return this.answerReady(pc.localDescription?.sdp, complete, t0);
    } catch (err) {
      this.setupFailed(err);
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

  #onDataChannel(ch: RTCDataChannel): void {
    if (this.isClosed || ch.label !== "events" || this.#channel) {
      ch.close();
      return;
    }
    this.#channel = ch;
    const attach = () => this.events.attach(ch);
    ch.stateChanged.subscribe((s) =>
      this.guard(() => {
        if (s === "open") attach();
        else if (s === "closed") this.close("client_hangup");
      })
    );
    ch.onMessage.subscribe((data) => this.guard(() => this.onControl(String(data))));
    if (ch.readyState === "open") attach();
  }

  #onConnectionState(s: string): void {
    this.#peerState = s;
    if (this.isClosed) return;
    if (s === "connected") {
      if (!this.markConnected()) return;
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

  /** PacketSink: one 20 ms Opus packet of the program this listener plays (shared, not modified). */
  pushPacket(payload: Uint8Array): void {
    if (this.state !== "connected" || !this.#sender) return;
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
      new RtpPacket(
        header,
        Buffer.isBuffer(payload) ? payload : Buffer.from(payload.buffer, payload.byteOffset, payload.length),
      ),
    )
      .catch((err) => this.log.debug("rtp send failed", { err }));
    const spent = performance.now() - t;
    this.onDataMs += spent;
    if (spent > this.onDataMaxMs) this.onDataMaxMs = spent;
  }

  protected override clearOwnTimers(): void {
    clearInterval(this.#liveTimer);
    this.#liveTimer = undefined;
  }

  /** The peer (its sockets, channel and sender). */
  protected releasePeer(): void {
    const pc = this.#pc;
    this.#pc = undefined;
    this.#sender = undefined;
    this.#channel = undefined;
    this.#peerState = "closed";
    if (pc) pc.close().catch((err) => this.log.debug("peer close failed", { err }));
  }
}
