/**
 * One call's audio over RTP/RTCP, as the main isolate sees it. The sockets, the jitter buffer, G.711 decoding,
 * DTMF, comfort noise, symmetric-RTP latching, RTCP and media-timeout detection run in the origin's RTP worker
 * (rtp_endpoint.ts, driven by rtp_worker_runtime.ts), and so does the 20 ms send clock: no long task on this
 * isolate can delay a packet. This side keeps the API the call uses: `send()` queues 8 kHz samples here; when
 * the worker's small queue of prepared packets runs low it asks (once per tick, for every call together), and
 * `prepare()` pulls the application's audio (`onNeedAudio`, the session's playout) and G.711-encodes it. The
 * worker's events (decoded audio, digits, RTCP BYE, media timeout, latching, pacing samples, stats) arrive in
 * one batch per tick and are replayed on the callbacks below.
 *
 * If the worker dies, `onMediaFailure` tells the call (which ends with `media_error`). `close()` is idempotent:
 * the worker sends an RTCP BYE and hands over its final figures, then the lease closes the sockets in the
 * worker and returns the ports.
 */
import type { PortLease } from "./port_allocator.ts";
import type { MediaDirection } from "./sdp.ts";
import { encodeG711 } from "./g711.ts";
import type { RtpWorkerClient } from "./rtp_worker_host.ts";
import {
  emptyRtpStats,
  type RtpEndpointConfig,
  type RtpEndpointReport,
  type RtpStats,
} from "./rtp_worker_types.ts";
import { SAMPLES_PER_PACKET } from "./rtp_endpoint.ts";

export { CN_PAYLOAD_TYPE, SAMPLES_PER_PACKET } from "./rtp_endpoint.ts";
export type { RtpStats } from "./rtp_worker_types.ts";

/** The call's media settings as the worker's endpoint takes them, plus the main side's lease and callbacks. */
export interface RtpSessionOptions extends
  Pick<
    RtpEndpointConfig,
    "payloadType" | "dtmfPayloadType" | "remoteAddress" | "remotePort" | "direction" | "held"
  > {
  lease: PortLease;
  onAudio?: (pcm8k: Int16Array) => void;
  onDtmf?: (digit: string, durationMs: number) => void;
  onRtcpBye?: () => void;
  onMediaTimeout?: () => void;
  /** The RTP worker died: this call has no media any more. */
  onMediaFailure?: (reason: string) => void;
  /**
   * Called when the send clock wants audio and less than one packet is queued here: an application that paces
   * its own audio (a session's playout) fills the queue from here, so there is one clock, not two drifting ones.
   */
  onNeedAudio?: () => void;
  /** 0 disables media-timeout detection. */
  mediaTimeoutMs?: number;
  rtcpIntervalMs?: number;
  cname?: string;
  /** Keep the last N gaps between outbound packets (ms) for pacing statistics. */
  recordPacing?: number;
  /** Prepared packets the worker keeps queued for this call. Default 3 (main may stall 40 ms unheard). */
  queuePackets?: number;
}

export class RtpSession implements RtpWorkerClient {
  readonly stats: RtpStats = emptyRtpStats();
  /** Gaps between consecutive outbound packets in ms (the last `recordPacing`), each taken at the send call. */
  readonly gaps: number[] = [];
  /**
   * Each outbound packet's lateness in ms against the call's ideal 20 ms grid, anchored at the first packet
   * (skipped ticks count as elapsed): the jitter-buffer depth a phone needs. The last `recordPacing`.
   */
  readonly lateness: number[] = [];
  #queue: Int16Array[] = [];
  #queued = 0;
  #remote: { address: string; port: number };
  #held: boolean;
  #lost = false;
  #closing: Promise<void> | undefined;

  constructor(private readonly o: RtpSessionOptions) {
    this.#remote = { address: o.remoteAddress, port: o.remotePort };
    this.#held = o.held;
    o.lease.worker.attach(o.lease.port, this);
    o.lease.worker.post({
      type: "open",
      config: {
        port: o.lease.port,
        payloadType: o.payloadType,
        dtmfPayloadType: o.dtmfPayloadType,
        remoteAddress: o.remoteAddress,
        remotePort: o.remotePort,
        direction: o.direction,
        held: o.held,
        mediaTimeoutMs: o.mediaTimeoutMs ?? 0,
        rtcpIntervalMs: o.rtcpIntervalMs ?? 5000,
        cname: o.cname ?? `parley@${o.lease.port}`,
        recordPacing: (o.recordPacing ?? 0) > 0,
        queuePackets: Math.max(1, o.queuePackets ?? 3),
      },
    }, o.lease.generation);
    // The worker died between the lease and now: nothing will ever report.
    if (o.lease.generation !== o.lease.worker.generation) {
      queueMicrotask(() => this.onWorkerLost("rtp worker gone before the call's media started"));
    }
  }

  get port(): number {
    return this.o.lease.port;
  }
  /** Where our media goes: the SDP's address until the caller's RTP latched it. */
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
    if (this.#closing || pcm8k.length === 0) return;
    this.#queue.push(pcm8k);
    this.#queued += pcm8k.length;
  }

  /** A re-INVITE changed direction or hold state; a remote address change comes with a new offer. */
  update(p: { direction: MediaDirection; held: boolean; remoteAddress?: string; remotePort?: number }): void {
    if (this.#closing) return;
    this.#held = p.held;
    this.o.lease.worker.post({ type: "update", port: this.port, update: p }, this.o.lease.generation);
  }

  /** RtpWorkerClient: the worker's events for this call since the last tick. */
  onReport(r: RtpEndpointReport): void {
    if (r.stats) Object.assign(this.stats, r.stats);
    if (r.remote) this.#remote = r.remote;
    const keep = this.o.recordPacing ?? 0;
    if (keep > 0) {
      if (r.gaps) push(this.gaps, r.gaps, keep);
      if (r.lateness) push(this.lateness, r.lateness, keep);
    }
    if (this.#closing) return;
    for (const pcm of r.audio ?? []) this.o.onAudio?.(pcm);
    for (const [digit, ms] of r.dtmf ?? []) this.o.onDtmf?.(digit, ms);
    if (r.rtcpBye) this.o.onRtcpBye?.();
    if (r.mediaTimeout) this.o.onMediaTimeout?.();
  }

  /** RtpWorkerClient: the worker wants up to `n` more packets; pull the application's audio and encode it. */
  prepare(n: number): Uint8Array[] {
    const out: Uint8Array[] = [];
    if (this.#closing) return out;
    for (let k = 0; k < n; k++) {
      for (let i = 0; i < 4 && this.#queued < SAMPLES_PER_PACKET && this.o.onNeedAudio; i++) {
        const before = this.#queued;
        this.o.onNeedAudio();
        if (this.#queued === before) break;
      }
      if (this.#queued === 0) break;
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
      out.push(encodeG711(this.o.payloadType, pcm));
    }
    return out;
  }

  /** RtpWorkerClient: the worker died; its sockets died with it. */
  onWorkerLost(reason: string): void {
    if (this.#lost) return;
    this.#lost = true;
    if (!this.#closing) this.o.onMediaFailure?.(reason);
  }

  /** RTCP BYE and final figures from the worker, then the sockets closed and the ports released. Idempotent. */
  close(): Promise<void> {
    return this.#closing ??= this.#close();
  }

  async #close(): Promise<void> {
    this.#queue = [];
    this.#queued = 0;
    const { worker, generation, port } = this.o.lease;
    if (!this.#lost) {
      try {
        const reply = await worker.request({ type: "close", port }, generation);
        if (reply.final) this.onReport(reply.final);
      } catch { /* the worker is gone: so are its sockets */ }
    }
    worker.detach(port, this);
    await this.o.lease.release();
  }
}

function push(into: number[], values: number[], keep: number): void {
  into.push(...values);
  if (into.length > keep) into.splice(0, into.length - keep);
}
