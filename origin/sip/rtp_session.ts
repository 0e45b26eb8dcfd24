/**
 * One call's audio over RTP/RTCP. Inbound: RTP → jitter buffer → G.711 decode → handler.onAudio (160 samples
 * = 20 ms at 8 kHz), telephone-events → DTMF digits, CN (PT 13) noted as "comfort noise", junk ignored.
 * Outbound: `send()` queues 8 kHz samples; the origin's shared 20 ms media clock (media_clock.ts) sends one
 * packet per tick (silence when the queue is empty, nothing while our direction forbids sending). Each packet's
 * payload is pulled and G.711-encoded on the previous pass, after every call has sent, so a send is only an
 * RTP header and a datagram. Symmetric RTP: media goes to where the
 * remote's RTP comes from (latched on the first valid packet, re-latched only after the old source fell
 * silent). RTCP: SR/RR every interval, BYE on close; a received RTCP BYE from the caller is reported. Media timeout: no RTP for
 * `mediaTimeoutMs`, never counted while the call is on hold or after the remote switched to comfort noise.
 */
import type dgram from "node:dgram";
import type { PortLease } from "./port_allocator.ts";
import type { MediaDirection } from "./sdp.ts";
import { buildRtp, parseRtp, type RtpPacket } from "./rtp_packet.ts";
import { buildRtcp, parseRtcp } from "./rtcp.ts";
import { JitterBuffer } from "./jitter_buffer.ts";
import { DtmfDetector } from "./telephone_event.ts";
import { decodeG711, encodeG711 } from "./g711.ts";
import { type MediaClock, mediaClock, type MediaClockMember } from "./media_clock.ts";
import { rtpMetrics } from "./sip_metrics.ts";

export const SAMPLES_PER_PACKET = 160;
export const CN_PAYLOAD_TYPE = 13;

export interface RtpSessionOptions {
  lease: PortLease;
  payloadType: 0 | 8;
  dtmfPayloadType?: number;
  remoteAddress: string;
  remotePort: number;
  direction: MediaDirection;
  held: boolean;
  onAudio?: (pcm8k: Int16Array) => void;
  onDtmf?: (digit: string, durationMs: number) => void;
  onRtcpBye?: () => void;
  onMediaTimeout?: () => void;
  /**
   * Called on the send clock when less than one packet of audio is queued: an application that paces its own
   * audio (a session's playout) fills the queue from here, so there is one clock, not two drifting ones.
   */
  onNeedAudio?: () => void;
  /** 0 disables media-timeout detection. */
  mediaTimeoutMs?: number;
  rtcpIntervalMs?: number;
  cname?: string;
  /** Keep the last N gaps between outbound packets (ms) for pacing statistics. */
  recordPacing?: number;
  /** The send clock; default the origin's shared one. */
  clock?: MediaClock;
}

export interface RtpStats {
  packetsIn: number;
  packetsOut: number;
  octetsOut: number;
  junk: number;
  late: number;
  lost: number;
  comfortNoise: number;
  rtcpIn: number;
  rtcpOut: number;
  /** RTCP BYEs not from the caller (another address, or not its SSRC): ignored. */
  ignoredByes: number;
}

export class RtpSession implements MediaClockMember {
  readonly stats: RtpStats = {
    packetsIn: 0,
    packetsOut: 0,
    octetsOut: 0,
    junk: 0,
    late: 0,
    lost: 0,
    comfortNoise: 0,
    rtcpIn: 0,
    rtcpOut: 0,
    ignoredByes: 0,
  };
  /** Gaps between consecutive outbound packets in ms (the last `recordPacing`), for pacing statistics. */
  readonly gaps: number[] = [];
  /**
   * Each outbound packet's lateness in ms against the call's ideal 20 ms grid, anchored at the first packet
   * (skipped ticks count as elapsed): the jitter-buffer depth a phone needs. The last `recordPacing`.
   */
  readonly lateness: number[] = [];
  readonly #clock: MediaClock;
  #lastSentAt = 0;
  #firstSentAt = 0;
  #ticksSinceFirst = 0;
  /** The next packet's G.711 payload, prepared on the previous clock pass. */
  #next: Uint8Array | undefined;
  readonly #silence: Uint8Array;
  readonly #jitter = new JitterBuffer(3);
  readonly #dtmf: DtmfDetector;
  readonly #ssrc = (Math.random() * 2 ** 32) >>> 0;
  #seq = (Math.random() * 65536) | 0;
  #ts = (Math.random() * 2 ** 32) >>> 0;
  #queue: Int16Array[] = [];
  #queued = 0;
  #remote: { address: string; port: number };
  #remoteRtcp: { address: string; port: number };
  #latched = false;
  #lastFromRemoteAt = 0;
  #lastRtpAt = performance.now();
  #inComfortNoise = false;
  #held: boolean;
  #direction: MediaDirection;
  #remoteSsrc?: number;
  #firstSeq = -1;
  #highestSeq = -1;
  #received = 0;
  #rtcpTimer?: ReturnType<typeof setTimeout>;
  #timeoutTimer?: ReturnType<typeof setTimeout>;
  #marker = true;
  #closed = false;

  constructor(private readonly o: RtpSessionOptions) {
    this.#remote = { address: o.remoteAddress, port: o.remotePort };
    this.#remoteRtcp = { address: o.remoteAddress, port: o.remotePort + 1 };
    this.#held = o.held;
    this.#direction = o.direction;
    this.#dtmf = new DtmfDetector((d, ms) => o.onDtmf?.(d, ms));
    o.lease.rtp.on("message", (m: Uint8Array, r: dgram.RemoteInfo) => this.#onRtp(m, r));
    o.lease.rtcp.on("message", (m: Uint8Array, r: dgram.RemoteInfo) => this.#onRtcp(m, r));
    this.#silence = encodeG711(o.payloadType, new Int16Array(SAMPLES_PER_PACKET));
    this.#clock = o.clock ?? mediaClock;
    this.#clock.add(this);
    this.#rtcpTimer = setInterval(() => this.#sendRtcp(false), o.rtcpIntervalMs ?? 5000);
    if (o.mediaTimeoutMs) {
      this.#timeoutTimer = setInterval(() => this.#checkTimeout(), Math.min(250, o.mediaTimeoutMs / 4));
    }
  }

  get port(): number {
    return this.o.lease.port;
  }
  get remote(): { address: string; port: number } {
    return { ...this.#remote };
  }
  get held(): boolean {
    return this.#held;
  }
  get pendingSamples(): number {
    return this.#queued;
  }

  /** Queues 8 kHz samples for paced sending. */
  send(pcm8k: Int16Array): void {
    if (this.#closed || pcm8k.length === 0) return;
    this.#queue.push(pcm8k);
    this.#queued += pcm8k.length;
  }

  /** A re-INVITE changed direction or hold state; a remote address change comes with a new offer. */
  update(p: { direction: MediaDirection; held: boolean; remoteAddress?: string; remotePort?: number }): void {
    this.#direction = p.direction;
    if (this.#held && !p.held) this.#lastRtpAt = performance.now();
    this.#held = p.held;
    if (p.remoteAddress && p.remotePort && p.remoteAddress !== "0.0.0.0" && !this.#latched) {
      this.#remote = { address: p.remoteAddress, port: p.remotePort };
      this.#remoteRtcp = { address: p.remoteAddress, port: p.remotePort + 1 };
    }
  }

  #onRtp(m: Uint8Array, r: dgram.RemoteInfo): void {
    if (this.#closed) return;
    const p = parseRtp(new Uint8Array(m));
    const known = p &&
      (p.payloadType === this.o.payloadType || p.payloadType === this.o.dtmfPayloadType ||
        p.payloadType === CN_PAYLOAD_TYPE);
    if (!p || !known) {
      this.stats.junk++;
      rtpMetrics.junk.inc();
      return;
    }
    const now = performance.now();
    const fromLatched = r.address === this.#remote.address && r.port === this.#remote.port;
    if (!fromLatched) {
      if (this.#latched && now - this.#lastFromRemoteAt < 1000) {
        this.stats.junk++;
        rtpMetrics.junk.inc();
        return;
      }
      this.#remote = { address: r.address, port: r.port };
      if (!this.#latched) this.#remoteRtcp = { address: r.address, port: r.port + 1 };
    }
    this.#latched = true;
    this.#lastFromRemoteAt = now;
    this.#lastRtpAt = now;
    this.stats.packetsIn++;
    rtpMetrics.packetsIn.inc();
    this.#track(p);
    if (p.payloadType === CN_PAYLOAD_TYPE) {
      this.#inComfortNoise = true;
      this.stats.comfortNoise++;
      return;
    }
    this.#inComfortNoise = false;
    if (p.payloadType === this.o.dtmfPayloadType) {
      this.#dtmf.push(p.timestamp, p.payload);
      return;
    }
    const lateBefore = this.#jitter.late;
    for (const ready of this.#jitter.push(p)) {
      this.o.onAudio?.(decodeG711(this.o.payloadType, ready.payload));
    }
    this.stats.late = this.#jitter.late;
    this.stats.lost = this.#jitter.lost;
    if (this.#jitter.late > lateBefore) rtpMetrics.late.inc();
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
    if (!packets) {
      this.stats.junk++;
      rtpMetrics.junk.inc();
      return;
    }
    this.stats.rtcpIn++;
    if (r.address === this.#remote.address) this.#remoteRtcp = { address: r.address, port: r.port };
    const bye = packets.find((p) => p.type === "bye");
    if (bye && this.#byeIsThePeers(bye.ssrcs, r.address)) this.o.onRtcpBye?.();
    else if (bye) {
      this.stats.ignoredByes++;
      rtpMetrics.ignoredByes.inc();
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

  /** Media clock: this tick's packet goes out now (its payload was prepared on the previous pass). */
  sendTick(skipped: number): void {
    if (this.#closed) return;
    // Skipped ticks keep the RTP timestamp on wall-clock time: the phone hears a gap, not a lasting delay.
    this.#ts = (this.#ts + SAMPLES_PER_PACKET * (skipped + 1)) >>> 0;
    if (this.#firstSentAt > 0) this.#ticksSinceFirst += skipped + 1;
    if (this.#next === undefined) this.prepareNext();
    const payload = this.#next!;
    this.#next = undefined;
    if (!this.#canSend()) return;
    const pkt = buildRtp({
      marker: this.#marker,
      payloadType: this.o.payloadType,
      sequence: this.#seq,
      timestamp: this.#ts,
      ssrc: this.#ssrc,
      payload,
    });
    this.#marker = false;
    this.#seq = (this.#seq + 1) & 0xffff;
    this.o.lease.rtp.send(pkt, this.#remote.port, this.#remote.address);
    this.stats.packetsOut++;
    this.stats.octetsOut += payload.length;
    rtpMetrics.packetsOut.inc();
    this.#recordGap();
  }

  /** Media clock, after every call sent: pull audio (the session's playout) and encode the next packet. */
  prepareNext(): void {
    if (this.#closed || this.#next !== undefined) return;
    for (let i = 0; i < 4 && this.#queued < SAMPLES_PER_PACKET && this.o.onNeedAudio; i++) {
      const before = this.#queued;
      this.o.onNeedAudio();
      if (this.#queued === before) break;
    }
    if (this.#queued === 0) {
      this.#next = this.#silence;
      return;
    }
    const pcm = new Int16Array(SAMPLES_PER_PACKET);
    let filled = 0;
    while (filled < SAMPLES_PER_PACKET && this.#queue.length > 0) {
      const head = this.#queue[0];
      const take = Math.min(head.length, SAMPLES_PER_PACKET - filled);
      pcm.set(head.subarray(0, take), filled);
      filled += take;
      if (take === head.length) this.#queue.shift();
      else this.#queue[0] = head.subarray(take);
    }
    this.#queued -= filled;
    this.#next = encodeG711(this.o.payloadType, pcm);
  }

  #recordGap(): void {
    const keep = this.o.recordPacing ?? 0;
    if (keep <= 0) return;
    const now = performance.now();
    if (this.#lastSentAt > 0) {
      this.gaps.push(now - this.#lastSentAt);
      if (this.gaps.length > keep) this.gaps.shift();
    } else {
      this.#firstSentAt = now;
    }
    this.lateness.push(now - (this.#firstSentAt + this.#ticksSinceFirst * SAMPLES_PER_PACKET / 8));
    if (this.lateness.length > keep) this.lateness.shift();
    this.#lastSentAt = now;
  }

  #rtcpBytes(bye: boolean): Uint8Array {
    const expected = this.#highestSeq - this.#firstSeq + 1;
    return buildRtcp({
      ssrc: this.#ssrc,
      cname: this.o.cname ?? `parley@${this.o.lease.port}`,
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
      this.o.lease.rtcp.send(this.#rtcpBytes(bye), this.#remoteRtcp.port, this.#remoteRtcp.address);
      this.stats.rtcpOut++;
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
    if (now - this.#lastRtpAt >= this.o.mediaTimeoutMs!) {
      clearInterval(this.#timeoutTimer);
      this.o.onMediaTimeout?.();
    }
  }

  /** Stops the clock, sends an RTCP BYE and releases the ports. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#sendRtcp(true);
    this.#closed = true;
    this.#clock.remove(this);
    this.#next = undefined;
    clearInterval(this.#rtcpTimer);
    clearInterval(this.#timeoutTimer);
    this.o.lease.rtp.removeAllListeners("message");
    this.o.lease.rtcp.removeAllListeners("message");
    await this.o.lease.release();
  }
}
