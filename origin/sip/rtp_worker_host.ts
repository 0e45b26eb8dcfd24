/**
 * The main isolate's handle on the origin's RTP worker (rtp_worker.ts): it starts the worker on first use,
 * binds and unbinds port pairs in it (PortAllocator), routes each tick's batch to the calls' RtpSessions and
 * answers their audio requests in one message, forwards the worker's metrics to this isolate's registry and its
 * logs to this isolate's logger.
 *
 * Failure: an uncaught error in the worker, or no message from it for `deadAfterMs` while it has calls or
 * requests outstanding (a hang, or a worker terminated behind our back), marks it lost: every call on it is
 * told (`onWorkerLost`, the call ends with `media_error`), pending requests reject with RtpWorkerLost, and its
 * ports are free again (a terminated worker's sockets close with it). The next bind starts a fresh worker.
 * `close()` shuts the worker down (its sockets closed, then terminated); idempotent.
 */
import { log as rootLog, type Logger } from "../../lib/log.ts";
import { type RequestOf, WorkerLink } from "../../lib/worker_link.ts";
import { WorkerLiveness } from "../../lib/worker_liveness.ts";
import { RtpWorkerLost } from "./errors.ts";
import { applyRtpMetrics, rtpMetrics } from "./sip_metrics.ts";
import type { RtpEndpointReport, RtpWorkerCommand, RtpWorkerEvent } from "./rtp_worker_types.ts";

/** What the worker host needs from one call's main-side session (RtpSession). */
export interface RtpWorkerClient {
  onReport(r: RtpEndpointReport): void;
  /** Prepare up to `n` G.711 payloads now (fewer when there is no audio). */
  prepare(n: number): Uint8Array[];
  onWorkerLost(reason: string): void;
}

export interface RtpWorkerOptions {
  log?: Logger;
  /** Silence from a worker with calls or requests outstanding that counts as dead. Default 3000 ms. */
  deadAfterMs?: number;
  /** Starts the worker (a test keeps the handle to kill it). */
  spawn?: () => Worker;
  /** A worker that has not loaded its modules (posted `ready`) within this is lost. Default 30000 ms. */
  startTimeoutMs?: number;
  /** Bound on the polite shutdown in close(). Default 1000 ms. */
  closeTimeoutMs?: number;
  /**
   * SCHED_FIFO priority (1–99) for the worker's thread, so its sends are not delayed behind other runnable
   * threads; 0 leaves the scheduling alone. Best effort (thread_priority.ts). Default 10.
   */
  realtimePriority?: number;
}

type Reply = Extract<RtpWorkerEvent, { type: "reply" }>;

const defaultSpawn = () =>
  new Worker(new URL("./rtp_worker.ts", import.meta.url), { type: "module", name: "rtp" });

export class RtpWorker {
  readonly #log: Logger;
  readonly #spawn: () => Worker;
  readonly #closeTimeoutMs: number;
  readonly #realtimePriority: number;
  #link: WorkerLink<RtpWorkerCommand, RtpWorkerEvent> | undefined;
  #generation = 0;
  readonly #clients = new Map<number, RtpWorkerClient>();
  readonly #liveness: WorkerLiveness;
  #skippedBefore = 0;
  #skippedNow = 0;
  #closing: Promise<void> | undefined;
  /** Worker deaths since this handle was created. */
  failures = 0;

  constructor(o: RtpWorkerOptions = {}) {
    this.#log = (o.log ?? rootLog).child({ component: "rtp_worker" });
    this.#spawn = o.spawn ?? defaultSpawn;
    this.#closeTimeoutMs = o.closeTimeoutMs ?? 1000;
    this.#realtimePriority = o.realtimePriority ?? 10;
    this.#liveness = new WorkerLiveness({
      deadAfterMs: o.deadAfterMs ?? 3000,
      startTimeoutMs: o.startTimeoutMs ?? 30_000,
      busy: () => !this.#idle(),
      onDead: (reason) => this.#fail(`rtp ${reason}`),
    });
  }

  /** The current worker's incarnation: a lease bound in an older one died with it. */
  get generation(): number {
    return this.#generation;
  }
  get running(): boolean {
    return this.#link !== undefined;
  }
  /** Clock ticks skipped after stalls, over every incarnation. */
  get skippedTicks(): number {
    return this.#skippedBefore + this.#skippedNow;
  }

  /** Binds the RTP/RTCP pair in the worker; the incarnation it is bound in, or null when a port is taken. */
  async bind(host: string, port: number): Promise<number | null> {
    const r = await this.#request({ type: "bind", host, port });
    return r.reply.ok ? r.generation : null;
  }

  /** Closes the pair's sockets in the worker and resolves after they are closed (at once if that worker died). */
  async unbind(port: number, generation: number): Promise<void> {
    if (generation !== this.#generation || !this.#link) return;
    try {
      await this.#request({ type: "unbind", port });
    } catch (e) {
      if (!(e instanceof RtpWorkerLost)) throw e;
    }
  }

  /** Routes the port's events to `client` (RtpSession, which then sends `open`). */
  attach(port: number, client: RtpWorkerClient): void {
    this.#liveness.touchIfIdle();
    this.#clients.set(port, client);
  }

  detach(port: number, client: RtpWorkerClient): void {
    if (this.#clients.get(port) === client) this.#clients.delete(port);
  }

  /** Fire-and-forget command for a port bound in `generation` (dropped when that worker is gone). */
  post(cmd: RtpWorkerCommand, generation: number, transfer: Transferable[] = []): void {
    if (generation !== this.#generation) return;
    this.#link?.post(cmd, transfer);
  }

  /** A command with a reply, in `generation` (RtpWorkerLost when that worker is gone or dies meanwhile). */
  async request(cmd: RequestOf<RtpWorkerCommand>, generation: number): Promise<Reply> {
    if (generation !== this.#generation || !this.#link) throw new RtpWorkerLost("rtp worker gone");
    return (await this.#request(cmd)).reply;
  }

  async #request(cmd: RequestOf<RtpWorkerCommand>): Promise<{ reply: Reply; generation: number }> {
    if (this.#closing) throw new RtpWorkerLost("rtp worker closed");
    const link = this.#ensure();
    const generation = this.#generation;
    this.#liveness.touchIfIdle();
    return { reply: await link.request(cmd), generation };
  }

  #idle(): boolean {
    return this.#clients.size === 0 && (this.#link?.pending ?? 0) === 0;
  }

  #ensure(): WorkerLink<RtpWorkerCommand, RtpWorkerEvent> {
    if (this.#link) return this.#link;
    const link = new WorkerLink<RtpWorkerCommand, RtpWorkerEvent>(this.#spawn(), {
      name: "rtp worker",
      log: this.#log,
      liveness: this.#liveness,
      onEvent: (m) => this.#onTick(m),
      onFail: (reason) => this.#fail(reason),
    });
    this.#link = link;
    link.post({ type: "init", realtimePriority: this.#realtimePriority });
    this.#log.info("rtp worker started", { generation: this.#generation });
    return link;
  }

  #onTick(m: Extract<RtpWorkerEvent, { type: "tick" }>): void {
    this.#skippedNow = m.skipped;
    if (m.metrics) applyRtpMetrics(m.metrics);
    for (const r of m.reports) {
      const c = this.#clients.get(r.port);
      if (!c) continue;
      try {
        c.onReport(r);
      } catch (err) {
        this.#log.error("rtp report handler failed", { port: r.port, err: err as Error });
      }
    }
    if (m.need.length === 0) return;
    const batch: Array<{ port: number; asked: number; payloads: Uint8Array[] }> = [];
    const transfer: Transferable[] = [];
    for (const [port, asked] of m.need) {
      let payloads: Uint8Array[] = [];
      try {
        payloads = this.#clients.get(port)?.prepare(asked) ?? [];
      } catch (err) {
        this.#log.error("rtp audio preparation failed", { port, err: err as Error });
      }
      for (const p of payloads) {
        if (p.buffer instanceof ArrayBuffer && p.byteOffset === 0 && p.byteLength === p.buffer.byteLength) {
          transfer.push(p.buffer);
        }
      }
      batch.push({ port, asked, payloads });
    }
    this.#link?.post({ type: "audio", batch }, transfer);
  }

  /** The worker is gone: every call on it ends, every request fails, its ports are free. */
  #fail(reason: string): void {
    if (!this.#link) return;
    this.#teardown();
    this.failures++;
    rtpMetrics.workerFailures.inc();
    this.#log.error("rtp worker lost", { reason, calls: this.#clients.size });
    const clients = [...this.#clients.values()];
    this.#clients.clear();
    for (const c of clients) {
      try {
        c.onWorkerLost(reason);
      } catch (err) {
        this.#log.error("rtp worker-lost handler failed", { err: err as Error });
      }
    }
  }

  #teardown(): void {
    const link = this.#link;
    this.#link = undefined;
    this.#generation++;
    this.#skippedBefore += this.#skippedNow;
    this.#skippedNow = 0;
    link?.close(new RtpWorkerLost("rtp worker gone"));
  }

  /** Polite shutdown (sockets closed, last metrics), bounded; then terminate. Idempotent. */
  close(): Promise<void> {
    return this.#closing ??= this.#close();
  }

  async #close(): Promise<void> {
    const link = this.#link;
    if (!link) return;
    await link.drain({ type: "shutdown" }, this.#closeTimeoutMs);
    this.#teardown();
    const clients = [...this.#clients.values()];
    this.#clients.clear();
    for (const c of clients) c.onWorkerLost("rtp worker closed");
    this.#log.info("rtp worker closed");
  }
}
