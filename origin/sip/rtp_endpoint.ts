/**
 * One call's RTP/RTCP on its bound socket pair, inside the RTP worker (rtp_worker_runtime.ts). Inbound: RTP →
 * jitter buffer → G.711 decode → `audio` in the call's next report (160 samples = 20 ms at 8 kHz),
 * telephone-events → DTMF digits, CN (PT 13) noted as comfort noise, junk counted. Outbound: the media clock's
 * pass sends one packet per tick from a small queue of G.711 payloads that the main isolate prepared (silence
 * when the queue ran dry, nothing while our direction forbids sending); after the pass the call asks main for
 * as many packets as bring the queue back to `queuePackets`. Symmetric RTP: media goes to where the remote's
 * RTP comes from (latched on the first valid packet, re-latched only after the old source fell silent). RTCP:
 * SR/RR every interval, BYE on close; a received RTCP BYE from the caller is reported. Media timeout: no RTP
 * for `mediaTimeoutMs`, never counted while the call is on hold or after the remote switched to comfort noise.
 *
 * Everything the main isolate must hear is accumulated in a report and taken by the runtime once per pass, so
 * the worker posts one message per 20 ms for all calls together.
 */
import type dgram from "node:dgram";
import { UdpFdSender } from "../../lib/udp_fd_sender.ts";
import { buildRtp, parseRtp, type RtpPacket } from "./rtp_packet.ts";
import { buildRtcp, parseRtcp } from "./rtcp.ts";
import { JitterBuffer } from "./jitter_buffer.ts";
import { DtmfDetector } from "./telephone_event.ts";
import { decodeG711, encodeG711 } from "./g711.ts";
import type { MediaClockMember } from "./media_clock.ts";
import type { RtpMetricsSink } from "./sip_metrics.ts";
import {
  emptyRtpStats,
  type RtpEndpointConfig,
  type RtpEndpointReport,
  type RtpMediaUpdate,
  type RtpStats,
} from "./rtp_worker_types.ts";

export const SAMPLES_PER_PACKET = 160;
export const CN_PAYLOAD_TYPE = 13;
/** A call's stats ride along every this many passes (and with its final report). */
const STATS_EVERY_PASSES = 5;

export interface RtpSockets {
  rtp: dgram.Socket;
  rtcp: dgram.Socket;
  /** The RTP socket's descriptor for sendto(2) (lib/udp_fd_sender.ts); null or absent: node:dgram. */
  rtpFd?: number | null;
}

export class RtpEndpoint implements MediaClockMember {
  readonly stats: RtpStats = emptyRtpStats();
  readonly port: number;
  #report: RtpEndpointReport;
  #statsDirty = false;
  #passes = 0;
  #lastSentAt = 0;
  #firstSentAt = 0;
  #ticksSinceFirst = 0;
  /** Prepared G.711 payloads (from main), oldest first. */
  readonly #queue: Uint8Array[] = [];
  /** Packets asked of main and not yet answered. */
  #asked = 0;
  #need = 0;
  readonly #silence: Uint8Array;
  readonly #jitter = new JitterBuffer(3);
  readonly #dtmf: DtmfDetector;
  readonly #ssrc = (Math.random() * 2 ** 32) >>> 0;
  #seq = (Math.random() * 65536) | 0;
  #ts = (Math.random() * 2 ** 32) >>> 0;
  #remote: { address: string; port: number };
  #remoteRtcp: { address: string; port: number };
  #latched = false;
  #lastFromRemoteAt = 0;
  #lastRtpAt = performance.now();
  #inComfortNoise = false;
  #held: boolean;
  #direction: RtpEndpointConfig["direction"];
  #remoteSsrc?: number;
  #firstSeq = -1;
  #highestSeq = -1;
  #received = 0;
  #rtcpTimer?: ReturnType<typeof setInterval>;
  #timeoutTimer?: ReturnType<typeof setInterval>;
  #marker = true;
  #closed = false;
  /** The next tick's packet, built after the last pass (prepareNext), with what it was built from. */
  #next: { pkt: Uint8Array; payload: Uint8Array; seq: number; ts: number; marker: boolean } | null = null;
  /** Send instants and their ideal instants, kept during passes (recordPacing). */
  readonly #sendTimes = new Float64Array(16);
  readonly #sendIdeal = new Float64Array(16);
  #sendCount = 0;
  /** sendto(2) on the RTP socket's descriptor (made on the first send that can use it). */
  #direct: UdpFdSender | null = null;

  constructor(
    private readonly c: RtpEndpointConfig,
    private readonly sockets: RtpSockets,
    private readonly metrics: RtpMetricsSink,
  ) {
    this.port = c.port;
    this.#report = { port: c.port };
    this.#remote = { address: c.remoteAddress, port: c.remotePort };
    this.#remoteRtcp = { address: c.remoteAddress, port: c.remotePort + 1 };
    this.#held = c.held;
    this.#direction = c.direction;
    this.#dtmf = new DtmfDetector((d, ms) => (this.#report.dtmf ??= []).push([d, ms]));
    this.#silence = encodeG711(c.payloadType, new Int16Array(SAMPLES_PER_PACKET));
    sockets.rtp.on("message", (m: Uint8Array, r: dgram.RemoteInfo) => this.#onRtp(m, r));
    sockets.rtcp.on("message", (m: Uint8Array, r: dgram.RemoteInfo) => this.#onRtcp(m, r));
    this.#rtcpTimer = setInterval(() => this.#sendRtcp(false), c.rtcpIntervalMs);
    if (c.mediaTimeoutMs > 0) {
      this.#timeoutTimer = setInterval(() => this.#checkTimeout(), Math.min(250, c.mediaTimeoutMs / 4));
    }
  }

  get queued(): number {
    return this.#queue.length;
  }

  update(p: RtpMediaUpdate): void {
    this.#direction = p.direction;
    if (this.#held && !p.held) this.#lastRtpAt = performance.now();
    this.#held = p.held;
    if (p.remoteAddress && p.remotePort && p.remoteAddress !== "0.0.0.0" && !this.#latched) {
      this.#remote = { address: p.remoteAddress, port: p.remotePort };
      this.#remoteRtcp = { address: p.remoteAddress, port: p.remotePort + 1 };
      this.#report.remote = { ...this.#remote };
    }
  }

  /** Main's answer to an ask: up to `asked` prepared payloads (fewer when its playout had nothing). */
  supply(asked: number, payloads: Uint8Array[]): void {
    this.#asked = Math.max(0, this.#asked - asked);
    if (this.#closed) return;
    for (const p of payloads) this.#queue.push(p);
  }

  #junk(): void {
    this.stats.junk++;
    this.#statsDirty = true;
    this.metrics.count("junk");
  }

  #onRtp(m: Uint8Array, r: dgram.RemoteInfo): void {
    if (this.#closed) return;
    const p = parseRtp(new Uint8Array(m));
    const known = p &&
      (p.payloadType === this.c.payloadType || p.payloadType === this.c.dtmfPayloadType ||
        p.payloadType === CN_PAYLOAD_TYPE);
    if (!p || !known) return this.#junk();
    const now = performance.now();
    const fromLatched = r.address === this.#remote.address && r.port === this.#remote.port;
    if (!fromLatched) {
      if (this.#latched && now - this.#lastFromRemoteAt < 1000) return this.#junk();
      this.#remote = { address: r.address, port: r.port };
      if (!this.#latched) this.#remoteRtcp = { address: r.address, port: r.port + 1 };
      this.#report.remote = { ...this.#remote };
    }
    this.#latched = true;
    this.#lastFromRemoteAt = now;
    this.#lastRtpAt = now;
    this.stats.packetsIn++;
    this.#statsDirty = true;
    this.metrics.count("packetsIn");
    this.#track(p);
    if (p.payloadType === CN_PAYLOAD_TYPE) {
      this.#inComfortNoise = true;
      this.stats.comfortNoise++;
      return;
    }
    this.#inComfortNoise = false;
    if (p.payloadType === this.c.dtmfPayloadType) {
      this.#dtmf.push(p.timestamp, p.payload);
      return;
    }
    const lateBefore = this.#jitter.late;
    for (const ready of this.#jitter.push(p)) {
      (this.#report.audio ??= []).push(decodeG711(this.c.payloadType, ready.payload));
    }
    this.stats.late = this.#jitter.late;
    this.stats.lost = this.#jitter.lost;
    if (this.#jitter.late > lateBefore) this.metrics.count("late");
  }

  #track(p: RtpPacket): void {
    if (this.#remoteSsrc !== p.ssrc) {
      this.#remoteSsrc = p.ssrc;
      this.#firstSeq = p.sequence;
      this.#highestSeq = p.sequence;
      this.#received = 0;
    }
    this.#received++;
    const diff = (p.sequence - (this.#highestSeq & 0xffff) + 65536) % 65536;
    if (diff > 0 && diff < 32768) this.#highestSeq += diff;
  }

  #onRtcp(m: Uint8Array, r: dgram.RemoteInfo): void {
    if (this.#closed) return;
    const packets = parseRtcp(new Uint8Array(m));
    if (!packets) return this.#junk();
    this.stats.rtcpIn++;
    this.#statsDirty = true;
    if (r.address === this.#remote.address) this.#remoteRtcp = { address: r.address, port: r.port };
    const bye = packets.find((p) => p.type === "bye");
    if (bye && this.#byeIsThePeers(bye.ssrcs, r.address)) this.#report.rtcpBye = true;
    else if (bye) {
      this.stats.ignoredByes++;
      this.metrics.count("ignoredByes");
    }
  }

  /**
   * An RTCP BYE ends the call, so a stray or forged one must not: it has to come from the caller's media
   * address and, once the caller's RTP was seen, name the caller's SSRC.
   */
  #byeIsThePeers(ssrcs: number[], from: string): boolean {
    if (from !== this.#remote.address) return false;
    return this.#remoteSsrc === undefined || ssrcs.includes(this.#remoteSsrc);
  }

  #canSend(): boolean {
    return (this.#direction === "sendrecv" || this.#direction === "sendonly") && this.#remote.port > 0 &&
      this.#remote.address !== "0.0.0.0";
  }

  /**
   * Media clock: this tick's packet goes out now. It was normally built after the previous pass (`prepareNext`),
   * so the send itself allocates nothing: a collection cannot start in the middle of the clock's pass and shift
   * the calls after this one. It is rebuilt here only if what it was built from changed (ticks skipped after a
   * stall, audio that arrived after an underrun, a held call).
   */
  sendTick(skipped: number): void {
    if (this.#closed) return;
    // Skipped ticks keep the RTP timestamp on wall-clock time: the phone hears a gap, not a lasting delay.
    this.#ts = (this.#ts + SAMPLES_PER_PACKET * (skipped + 1)) >>> 0;
    if (this.#firstSentAt > 0) this.#ticksSinceFirst += skipped + 1;
    let payload = this.#queue.shift();
    if (payload === undefined) {
      payload = this.#silence;
      if (this.stats.packetsOut > 0) {
        this.stats.underruns++;
        this.metrics.count("underruns");
      }
    }
    if (!this.#canSend()) return;
    const next = this.#next;
    const pkt = next && next.payload === payload && next.seq === this.#seq && next.ts === this.#ts &&
        next.marker === this.#marker
      ? next.pkt
      : this.#build(payload, this.#seq, this.#ts, this.#marker);
    this.#next = null;
    this.#marker = false;
    this.#seq = (this.#seq + 1) & 0xffff;
    const direct = this.#directSender();
    if (direct) {
      // Synchronous: the datagram is in the kernel when this returns (a full buffer drops it, as UDP would).
      direct.send(pkt);
      this.metrics.count("directSends");
    } else {
      // Deno's node:dgram hands the datagram to the kernel a little later, after the pass, in the same turn.
      this.sockets.rtp.send(pkt, this.#remote.port, this.#remote.address);
    }
    // Taken at the send call, not the planned instant: the pacing figures say when each send was made.
    const sentAt = performance.now();
    this.stats.packetsOut++;
    this.stats.octetsOut += payload.length;
    this.#statsDirty = true;
    this.metrics.count("packetsOut");
    this.#recordSend(sentAt);
  }

  #build(payload: Uint8Array, sequence: number, timestamp: number, marker: boolean): Uint8Array {
    return buildRtp({
      marker,
      payloadType: this.c.payloadType,
      sequence,
      timestamp,
      ssrc: this.#ssrc,
      payload,
    });
  }

  /** The sendto sender aimed at the current remote, or null (no descriptor, or not an IPv4 remote). */
  #directSender(): UdpFdSender | null {
    const fd = this.sockets.rtpFd;
    if (fd === null || fd === undefined) return null;
    const d = this.#direct ??= new UdpFdSender(fd);
    return d.aim(this.#remote.address, this.#remote.port) ? d : null;
  }

  /**
   * Media clock, after every call sent: ask main for enough prepared packets to refill the queue, and build
   * the next tick's packet now, outside the next pass (sendTick checks it is still the right one).
   */
  prepareNext(): void {
    if (this.#closed) return;
    const want = this.c.queuePackets - this.#queue.length - this.#asked;
    if (want > 0) {
      this.#asked += want;
      this.#need += want;
    }
    if (!this.#canSend()) return;
    const payload = this.#queue[0] ?? this.#silence;
    const ts = (this.#ts + SAMPLES_PER_PACKET) >>> 0;
    this.#next = {
      pkt: this.#build(payload, this.#seq, ts, this.#marker),
      payload,
      seq: this.#seq,
      ts,
      marker: this.#marker,
    };
  }

  /** The packets to ask main for since the last call (0: none). */
  takeNeed(): number {
    const n = this.#need;
    this.#need = 0;
    return n;
  }

  /** Everything main has not heard yet; undefined when there is nothing. Stats every few passes. */
  takeReport(final = false): RtpEndpointReport | undefined {
    this.#passes++;
    this.#drainSends();
    if (this.#statsDirty && (final || this.#passes % STATS_EVERY_PASSES === 0)) {
      this.#report.stats = { ...this.stats };
      this.#statsDirty = false;
    }
    if (final && !this.#report.stats) this.#report.stats = { ...this.stats };
    const r = this.#report;
    if (Object.keys(r).length === 1) return undefined;
    this.#report = { port: this.port };
    return r;
  }

  /** Pacing samples (when recorded): into preallocated arrays during the pass, into the report after it. */
  #recordSend(now: number): void {
    if (!this.c.recordPacing) return;
    if (this.#firstSentAt === 0) this.#firstSentAt = now;
    if (this.#sendCount === this.#sendTimes.length) this.#drainSends();
    this.#sendTimes[this.#sendCount] = now;
    this.#sendIdeal[this.#sendCount] = this.#firstSentAt + this.#ticksSinceFirst * SAMPLES_PER_PACKET / 8;
    this.#sendCount++;
  }

  #drainSends(): void {
    for (let i = 0; i < this.#sendCount; i++) {
      const now = this.#sendTimes[i];
      if (this.#lastSentAt > 0) (this.#report.gaps ??= []).push(now - this.#lastSentAt);
      (this.#report.lateness ??= []).push(now - this.#sendIdeal[i]);
      this.#lastSentAt = now;
    }
    this.#sendCount = 0;
  }

  #rtcpBytes(bye: boolean): Uint8Array {
    const expected = this.#highestSeq - this.#firstSeq + 1;
    return buildRtcp({
      ssrc: this.#ssrc,
      cname: this.c.cname,
      sender: this.stats.packetsOut > 0
        ? {
          ntpMs: Date.now(),
          rtpTimestamp: this.#ts,
          packets: this.stats.packetsOut,
          octets: this.stats.octetsOut,
        }
        : undefined,
      report: this.#remoteSsrc !== undefined
        ? {
          ssrc: this.#remoteSsrc,
          fractionLost: 0,
          cumulativeLost: Math.max(0, expected - this.#received),
          highestSeq: this.#highestSeq,
          jitter: 0,
          lsr: 0,
          dlsr: 0,
        }
        : undefined,
      bye,
    });
  }

  #sendRtcp(bye: boolean): void {
    if (this.#remoteRtcp.address === "0.0.0.0") return;
    try {
      this.sockets.rtcp.send(this.#rtcpBytes(bye), this.#remoteRtcp.port, this.#remoteRtcp.address);
      this.stats.rtcpOut++;
      this.#statsDirty = true;
    } catch { /* socket closing */ }
  }

  #checkTimeout(): void {
    if (this.#closed) return;
    const now = performance.now();
    // Hold and comfort noise are silence by agreement, not a dead call: the clock restarts from now.
    if (this.#held || this.#inComfortNoise || this.#direction === "inactive") {
      this.#lastRtpAt = now;
      return;
    }
    if (now - this.#lastRtpAt >= this.c.mediaTimeoutMs) {
      clearInterval(this.#timeoutTimer);
      this.#report.mediaTimeout = true;
    }
  }

  /**
   * Sends an RTCP BYE, stops the timers and detaches from the sockets (which stay bound: the lease owns
   * them). Returns the final report. Idempotent (later calls: undefined). The caller removes it from the clock.
   */
  close(): RtpEndpointReport | undefined {
    if (this.#closed) return undefined;
    this.#sendRtcp(true);
    this.#closed = true;
    this.#direct = null;
    this.#next = null;
    this.#queue.length = 0;
    clearInterval(this.#rtcpTimer);
    clearInterval(this.#timeoutTimer);
    this.sockets.rtp.removeAllListeners("message");
    this.sockets.rtcp.removeAllListeners("message");
    return this.takeReport(true) ?? { port: this.port, stats: { ...this.stats } };
  }
}
