/**
 * What the RTP worker does (rtp_worker.ts is only its entry point): it binds and closes the calls' RTP/RTCP
 * socket pairs, runs each call's RtpEndpoint, and owns the origin's one send clock, in precise mode (timer,
 * then Atomics.wait, then a short spin), so no long task on the main isolate (call setup, pipelines, database)
 * can delay a send. After each clock pass it posts one `tick` batch to main with every call's events and
 * audio requests; metrics ride along about once a second.
 */
import dgram from "node:dgram";
import { MediaClock } from "./media_clock.ts";
import { RtpEndpoint } from "./rtp_endpoint.ts";
import { RtpMetricsBatcher } from "./rtp_metrics_batcher.ts";
import type { RtpEndpointReport, RtpWorkerCommand, RtpWorkerEvent } from "./rtp_worker_types.ts";
import type { Logger } from "../../lib/log.ts";
import { raiseThreadPriority } from "../../lib/thread_priority.ts";
import { udpFdOfPort } from "../../lib/udp_fd_sender.ts";

const METRICS_EVERY_MS = 1000;
/**
 * Deno's node:dgram allocates a fresh receive buffer of this size for every datagram (64 KiB unless set; on
 * Linux it doubles the value given to setRecvBufferSize, which here sizes only that buffer, not SO_RCVBUF).
 * At 50 packets a second per call, 64 KiB each would be most of the worker's garbage and its collections
 * pause the send clock. RTP and RTCP datagrams are far smaller; a longer datagram is cut and counted as junk.
 */
const RECEIVE_BUFFER_BYTES = 4096;

interface Bound {
  rtp: dgram.Socket;
  rtcp: dgram.Socket;
  /** The RTP socket's own descriptor, for sendto(2) at the clock's instant; null: node:dgram sends. */
  rtpFd: number | null;
  endpoint?: RtpEndpoint;
}

export type PostToMain = (msg: RtpWorkerEvent, transfer?: Transferable[]) => void;

export interface RtpWorkerRuntimeOptions {
  post: PostToMain;
  log: Logger;
  /** Precise pacing (Atomics.wait and a spin): true in the worker. */
  precise?: boolean;
  /**
   * Send RTP with sendto(2) on each call socket's descriptor (lib/udp_fd_sender.ts) where FFI allows, so a
   * packet is in the kernel at the clock's instant instead of after the pass: true unless a test compares.
   */
  directSend?: boolean;
}

export class RtpWorkerRuntime {
  readonly #bound = new Map<number, Bound>();
  readonly #metrics = new RtpMetricsBatcher();
  readonly #clock: MediaClock;
  readonly #post: PostToMain;
  readonly #log: Logger;
  readonly #directSend: boolean;
  #lastMetricsAt = performance.now();
  #closed = false;

  constructor(o: RtpWorkerRuntimeOptions) {
    this.#post = o.post;
    this.#log = o.log;
    this.#directSend = o.directSend ?? true;
    this.#clock = new MediaClock({
      precise: o.precise ?? true,
      metrics: this.#metrics,
      afterPass: () => this.#flush(),
      log: o.log,
    });
  }

  /** One command from main. Never throws: a failed command is logged (and answered, when it has a request). */
  async handle(cmd: RtpWorkerCommand): Promise<void> {
    try {
      await this.#dispatch(cmd);
    } catch (err) {
      this.#log.error("rtp worker command failed", { type: cmd.type, err: err as Error });
      if ("req" in cmd) this.#post({ type: "reply", req: cmd.req, ok: false, error: String(err) });
    }
  }

  async #dispatch(cmd: RtpWorkerCommand): Promise<void> {
    switch (cmd.type) {
      case "init": {
        const r = raiseThreadPriority(cmd.realtimePriority);
        const level = r.policy === "fifo" || cmd.realtimePriority === 0 ? "info" : "warn";
        this.#log[level]("rtp worker thread priority", { policy: r.policy, detail: r.detail });
        return;
      }
      case "bind": {
        const ok = !this.#closed && !this.#bound.has(cmd.port) && await this.#bind(cmd.host, cmd.port);
        this.#post({ type: "reply", req: cmd.req, ok });
        return;
      }
      case "unbind": {
        const b = this.#bound.get(cmd.port);
        this.#bound.delete(cmd.port);
        if (b) await this.#release(b);
        this.#post({ type: "reply", req: cmd.req, ok: true });
        return;
      }
      case "open": {
        const b = this.#bound.get(cmd.config.port);
        if (!b || b.endpoint || this.#closed) {
          this.#log.warn("rtp open on a port that is not bound here", { port: cmd.config.port });
          return;
        }
        b.endpoint = new RtpEndpoint(cmd.config, b, this.#metrics);
        this.#clock.add(b.endpoint);

        return;
      }
      case "update":
        this.#bound.get(cmd.port)?.endpoint?.update(cmd.update);
        return;
      case "audio":
        for (const a of cmd.batch) this.#bound.get(a.port)?.endpoint?.supply(a.asked, a.payloads);
        return;
      case "close": {
        const b = this.#bound.get(cmd.port);
        const final = b?.endpoint ? this.#closeEndpoint(b) : undefined;
        if (this.#clock.size === 0) this.#flushMetrics();
        this.#post({ type: "reply", req: cmd.req, ok: true, final }, transferOf(final ? [final] : []));
        return;
      }
      case "shutdown": {
        this.#closed = true;
        const all = [...this.#bound.values()];
        this.#bound.clear();
        await Promise.all(all.map((b) => this.#release(b)));
        this.#clock.close();
        this.#flushMetrics();
        this.#post({ type: "reply", req: cmd.req, ok: true });
        return;
      }
    }
  }

  #closeEndpoint(b: Bound): RtpEndpointReport | undefined {
    const e = b.endpoint!;
    b.endpoint = undefined;
    this.#clock.remove(e);
    return e.close();
  }

  async #release(b: Bound): Promise<void> {
    if (b.endpoint) this.#closeEndpoint(b);
    // Dropped before the socket closes: the descriptor number could be reused by the next socket or file.
    b.rtpFd = null;
    await Promise.all([closeSocket(b.rtp), closeSocket(b.rtcp)]);
  }

  async #bind(host: string, port: number): Promise<boolean> {
    const rtp = await bindSocket(host, port);
    const rtcp = rtp ? await bindSocket(host, port + 1) : null;
    if (!rtp || !rtcp) {
      if (rtp) await closeSocket(rtp);
      return false;
    }
    for (const s of [rtp, rtcp]) s.setRecvBufferSize(RECEIVE_BUFFER_BYTES / 2);
    this.#bound.set(port, { rtp, rtcp, rtpFd: this.#directSend ? udpFdOfPort(port, host) : null });
    return true;
  }

  /** After every clock pass: one message with every call's requests and events. */
  #flush(): void {
    const need: Array<[number, number]> = [];
    const reports: RtpEndpointReport[] = [];
    for (const [port, b] of this.#bound) {
      const e = b.endpoint;
      if (!e) continue;
      const n = e.takeNeed();
      if (n > 0) need.push([port, n]);
      const r = e.takeReport();
      if (r) reports.push(r);
    }
    const now = performance.now();
    const metrics = now - this.#lastMetricsAt >= METRICS_EVERY_MS ? this.#metrics.take() : undefined;
    if (metrics) this.#lastMetricsAt = now;
    if (need.length === 0 && reports.length === 0 && !metrics) return;
    this.#post({ type: "tick", need, reports, skipped: this.#clock.skipped, metrics }, transferOf(reports));
  }

  /** Whatever was counted since the last tick's batch (the clock stopped: no tick would carry it). */
  #flushMetrics(): void {
    const metrics = this.#metrics.take();
    this.#lastMetricsAt = performance.now();
    if (metrics) this.#post({ type: "tick", need: [], reports: [], skipped: this.#clock.skipped, metrics });
  }
}

/** Decoded audio buffers move to main instead of being copied. */
function transferOf(reports: RtpEndpointReport[]): Transferable[] {
  const t: Transferable[] = [];
  for (const r of reports) {
    for (const a of r.audio ?? []) {
      const b = a.buffer;
      if (b instanceof ArrayBuffer && a.byteOffset === 0 && a.byteLength === b.byteLength && !t.includes(b)) {
        t.push(b);
      }
    }
  }
  return t;
}

function bindSocket(host: string, port: number): Promise<dgram.Socket | null> {
  return new Promise((resolve) => {
    const s = dgram.createSocket("udp4");
    s.once("error", () => {
      try {
        s.close();
      } catch { /* already closed */ }
      resolve(null);
    });
    s.bind(port, host, () => {
      s.removeAllListeners("error");
      s.on("error", () => {});
      resolve(s);
    });
  });
}

function closeSocket(s: dgram.Socket): Promise<void> {
  return new Promise((resolve) => {
    try {
      s.close(() => resolve());
    } catch {
      resolve();
    }
  });
}
