/**
 * A listener of a `shared` room: a recvonly client's peer on werift (WebRTC in TypeScript), which sends RTP
 * packets it is given rather than encoding audio itself. The room encodes each program once
 * (program_encoder.ts) and the controller hands every listener the packet of the program it plays
 * (`pushPacket`); the listener stamps its own sequence number and timestamp (so a switch between programs is
 * seamless on the wire), protects it with the session's SRTP keys and sends it on the ICE pair's socket
 * (DirectSend below; sendto(2) on its descriptor, lib/udp_fd_sender.ts). Per listener that is SRTP and one
 * UDP send per 20 ms packet on the thread it runs on (a forward worker, or the main isolate): no Opus encoder
 * and no native threads per listener, which is what bounded a `full` room (origin/rooms/README.md).
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
import { ntp64OfEpochMs } from "../../lib/ntp_time.ts";
import { validateOffer } from "../session/sdp.ts";
import { ListenerCore, type ListenerCoreInit } from "./listener_core.ts";
import { PACKET_SAMPLES } from "./program_encoder.ts";
import type { PacketSink } from "./room_types.ts";
import { applyWeriftDtlsFix } from "./werift_dtls_fix.ts";
import {
  applyWeriftFastSrtp,
  type CipherAesCtrLike,
  isFastCtrCipher,
  type PlainRtpHeader,
  protectRtp,
  protectRtpInto,
} from "./werift_fast_srtp.ts";
import { udpFdOfPort, UdpFdSender } from "../../lib/udp_fd_sender.ts";

const packetGap = registry.histogram(
  "parley_room_listener_packet_gap_seconds",
  "Gap between consecutive packets handed to a shared room's listener (20 ms nominal)",
  [0.005, 0.01, 0.015, 0.019, 0.021, 0.025, 0.03, 0.04, 0.05, 0.1, 0.25],
);
const forwarded = registry.counter(
  "parley_room_forwarded_packets_total",
  "RTP packets a shared room's listeners were handed (one encoded packet, sent once per listener), by send path",
);
const forwardedDirect = forwarded.with({ path: "direct" });
const forwardedFd = forwarded.with({ path: "fd" });
const forwardedSender = forwarded.with({ path: "sender" });

/**
 * One DTLS certificate for every listener of the process (ECDSA P-256, as werift makes per peer otherwise):
 * making one costs more than the rest of a join, and a slower answer makes the client retransmit handshake
 * flights.
 */
let certificate: ReturnType<typeof createSelfSignedCertificate> | null = null;
const processCertificate = () =>
  certificate ??= createSelfSignedCertificate({ signature: 3, hash: 4 } as never, 23 as never);

/**
 * Deno's node:dgram allocates a fresh receive buffer of this size for every datagram (64 KiB unless set; on
 * Linux it doubles the value given to setRecvBufferSize, which here sizes only that buffer, not SO_RCVBUF; see
 * origin/sip/rtp_worker_runtime.ts). A listener's peer receives RTCP, STUN consent checks and SCTP (≤ the path
 * MTU): 4 KiB each instead of 64 KiB of garbage per datagram, hundreds a second in a large room.
 */
const RECEIVE_BUFFER_BYTES = 4096;

/** Receiver reports come every ~1–5 s; silence this much past the ICE grace means the client is gone. */
const LIVENESS_SLACK_MS = 5_000;

const OPUS = () => new RTCRtpCodecParameters({ mimeType: "audio/opus", clockRate: 48_000, channels: 2 });

export type ForwardListenerInit = ListenerCoreInit;

/**
 * The parts of a connected werift sender that a packet is sent through directly (werift 0.25.2): its SRTP
 * session, the ICE connection's nominated pair (its UDP socket and the client's address) and the counters its
 * RTCP sender reports are made from. RTCRtpSender.sendRtp does the same work, plus a packet clone, header
 * extension bookkeeping (none are negotiated here), a retransmission cache (no NACK for Opus here) and three
 * levels of promises: bench/forward_send.ts measured 36 µs of CPU per packet through it, 18–22 directly.
 */
export interface DirectSend {
  sender: {
    ssrc: number;
    codec?: { payloadType: number };
    packetCount: number;
    octetCount: number;
    rtpTimestamp: number;
    ntpTimestamp: bigint;
    runRtcp(): Promise<void>;
  };
  srtp: { encrypt(payload: Buffer, header: RtpHeader): Buffer };
  /** The session's AES-CM cipher when werift_fast_srtp's protectRtp serves it (else srtp.encrypt). */
  cipher: CipherAesCtrLike | null;
  payloadType: number;
  connection: {
    nominated?: {
      remoteAddr: [string, number];
      protocol: {
        transport: {
          closed?: boolean;
          socket?: {
            send(b: Uint8Array, port: number, host: string): void;
            setRecvBufferSize?(n: number): void;
            address?(): { port: number; address: string };
          };
        };
      };
    };
    canSendApplicationData(): boolean;
  };
}

/** The direct path of a connected sender, or null when werift's internals are not as expected. */
export function directSendOf(sender: RTCRtpSender): DirectSend | null {
  const s = sender as unknown as DirectSend["sender"] & {
    dtlsTransport?: { srtp?: DirectSend["srtp"]; iceTransport?: { connection?: DirectSend["connection"] } };
  };
  const srtp = s.dtlsTransport?.srtp, connection = s.dtlsTransport?.iceTransport?.connection;
  if (
    !srtp || typeof srtp.encrypt !== "function" || !connection ||
    typeof connection.canSendApplicationData !== "function" || typeof s.runRtcp !== "function" ||
    typeof s.codec?.payloadType !== "number" ||
    typeof connection.nominated?.protocol?.transport?.socket?.send !== "function"
  ) return null;
  const cipher = (srtp as { localContext?: { cipher?: unknown } }).localContext?.cipher;
  return {
    sender: s,
    srtp,
    cipher: isFastCtrCipher(cipher) ? cipher : null,
    payloadType: s.codec!.payloadType,
    connection,
  };
}

export class ForwardListener extends ListenerCore implements PacketSink {
  readonly kind = "packets" as const;
  #pc: RTCPeerConnection | undefined;
  #sender: RTCRtpSender | undefined;
  /** Set on connect when werift's internals allow it; otherwise packets go through RTCRtpSender.sendRtp. */
  #direct: DirectSend | null = null;
  /**
   * sendto(2) on the pair's socket descriptor (lib/udp_fd_sender.ts) where FFI is allowed (AES-CM sessions
   * protect into a reused packet buffer, GCM ones through werift's encrypt); else the socket's node:dgram send.
   */
  #fd: UdpFdSender | null = null;
  /** The packet buffer the sendto path reuses (made with its sender). */
  #out = Buffer.alloc(0);
  #channel: RTCDataChannel | undefined;
  #peerState = "none";
  #seq = Math.floor(Math.random() * 0x10000);
  #roc = 0;
  /** The next packet's header, reused (the direct path writes it into the packet). */
  readonly #header: PlainRtpHeader = {
    payloadType: 111,
    sequenceNumber: 0,
    timestamp: 0,
    ssrc: 0,
    marker: false,
  };
  #timestamp = Math.floor(Math.random() * 0x1_0000_0000);
  /** When the last packet was sent (performance.now()): its gap to the next, and the sender reports' time. */
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
      this.#direct = this.#sender ? directSendOf(this.#sender) : null;
      try {
        this.#direct?.connection.nominated?.protocol.transport.socket?.setRecvBufferSize?.(
          RECEIVE_BUFFER_BYTES / 2,
        );
      } catch (err) {
        this.log.debug("could not size the receive buffer", { err });
      }
      this.#fd = this.#direct ? this.#fdSender(this.#direct) : null;
      if (this.#fd && this.#direct?.cipher) this.#out = Buffer.alloc(1500);
      if (this.#direct) {
        // The sender reports' wall clock is read when a report is made (every 0.5–1.5 s), not made per packet:
        // werift's ntpTime() costs ~1 µs and ~1 KB of garbage per call, and its fraction is not RFC 3550's.
        // The last packet's send instant is the NTP time that goes with the sender's `rtpTimestamp` (0 before
        // the first packet, as werift has it).
        Object.defineProperty(this.#direct.sender, "ntpTimestamp", {
          configurable: true,
          enumerable: true,
          get: () =>
            this.#lastPacketAt > 0 ? ntp64OfEpochMs(performance.timeOrigin + this.#lastPacketAt) : 0n,
          set: () => {},
        });
        void this.#direct.sender.runRtcp().catch(() => {});
      } else this.log.warn("werift sender internals not as expected; sending through RTCRtpSender.sendRtp");
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
    const h = this.#header;
    h.sequenceNumber = this.#seq;
    h.timestamp = this.#timestamp;
    h.marker = this.packets === 0;
    const buf = Buffer.isBuffer(payload)
      ? payload
      : Buffer.from(payload.buffer, payload.byteOffset, payload.length);
    const d = this.#direct;
    (this.#fd ? forwardedFd : d ? forwardedDirect : forwardedSender).inc();
    if (d) this.#sendDirect(d, h, buf);
    else {
      this.#sender.sendRtp(new RtpPacket(new RtpHeader(h), buf)).catch((err) =>
        this.log.debug("rtp send failed", { err })
      );
    }
    this.#seq = (this.#seq + 1) & 0xffff;
    // RFC 3711 rollover counter: the sender's count of sequence number wraps (0 at its first packet).
    if (this.#seq === 0) this.#roc = (this.#roc + 1) >>> 0;
    this.#timestamp = (this.#timestamp + PACKET_SAMPLES) >>> 0;
    this.packets++;
    this.frames += 2;
    const spent = performance.now() - t;
    this.onDataMs += spent;
    if (spent > this.onDataMaxMs) this.onDataMaxMs = spent;
  }

  #sendDirect(d: DirectSend, h: PlainRtpHeader, payload: Buffer): void {
    const pair = d.connection.nominated;
    const transport = pair?.protocol.transport;
    if (!pair || !transport?.socket || transport.closed || !d.connection.canSendApplicationData()) return;
    h.ssrc = d.sender.ssrc;
    h.payloadType = d.payloadType;
    const fd = this.#fd;
    try {
      if (fd && pair.remoteAddr[1] === fd.port && pair.remoteAddr[0] === fd.host) {
        // AES-CM into the reused buffer; GCM (what werift picks when a browser offers it) through werift's
        // encrypt, still without node:dgram's per-send cost and garbage.
        if (d.cipher) fd.send(this.#out, protectRtpInto(d.cipher, h, payload, this.#roc, this.#out));
        else fd.send(d.srtp.encrypt(payload, new RtpHeader(h)));
      } else {
        const packet = d.cipher
          ? protectRtp(d.cipher, h, payload, this.#roc)
          : d.srtp.encrypt(payload, new RtpHeader(h));
        transport.socket.send(packet, pair.remoteAddr[1], pair.remoteAddr[0]);
      }
    } catch (err) {
      this.log.debug("rtp send failed", { err });
    }
    // What the sender's RTCP sender reports are made of, as werift's own send path keeps it.
    d.sender.packetCount = (d.sender.packetCount + 1) >>> 0;
    d.sender.octetCount += payload.length;
    d.sender.rtpTimestamp = h.timestamp;
  }

  /** The pair's socket descriptor as a sendto sender, or null (no FFI, not found, not IPv4). */
  #fdSender(d: DirectSend): UdpFdSender | null {
    const pair = d.connection.nominated;
    const local = pair?.protocol.transport.socket?.address?.();
    if (!pair || !local?.port) return null;
    // By address too: the same port number may be bound on another address by another socket.
    const fd = udpFdOfPort(local.port, local.address);
    if (fd === null) return null;
    try {
      return new UdpFdSender(fd, pair.remoteAddr[0], pair.remoteAddr[1]);
    } catch (err) {
      this.log.debug("no sendto sender", { err });
      return null;
    }
  }

  /**
   * A packet of this listener's program was not sent (its worker was behind): the RTP timestamp still
   * advances, so the client's jitter buffer sees the time that passed, not late packets.
   */
  skipPacket(): void {
    this.#timestamp = (this.#timestamp + PACKET_SAMPLES) >>> 0;
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
    this.#direct = null;
    this.#fd = null;
    this.#channel = undefined;
    this.#peerState = "closed";
    if (pc) pc.close().catch((err) => this.log.debug("peer close failed", { err }));
  }
}
