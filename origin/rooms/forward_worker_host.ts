/**
 * The main isolate's handle on one room forward worker (forward_worker.ts): it starts the worker on first use,
 * negotiates listeners in it, and batches what the room controller hands its listeners — every packet and
 * event queued during one synchronous run (a room tick, a caption fan-out) goes out as one message when it
 * ends (a microtask), each payload once with the slots that get it. It routes the worker's reports to the
 * RemoteForwardListeners and its metrics to this isolate's registry (`worker="room-forward-<n>"`) and its logs
 * to this isolate's logger.
 *
 * Failure: an uncaught error in the worker, or silence for `deadAfterMs` while it has listeners (it reports
 * every STATS_EVERY_MS), marks it lost: every listener on it closes (`error`), pending requests reject with
 * ForwardWorkerLost. The next listener starts a fresh worker. `close()` closes the worker's listeners, then
 * terminates it; idempotent.
 */
import { ApiError } from "../../lib/errors.ts";
import { log as rootLog, type Logger } from "../../lib/log.ts";
import { registry } from "../../lib/metrics.ts";
import { type LinkEvent, type RequestOf, WorkerLink } from "../../lib/worker_link.ts";
import { WorkerLiveness } from "../../lib/worker_liveness.ts";
import type { ListenerEvent, ListenerSource } from "../../protocol/room_messages.ts";
import type {
  ForwardCommand,
  ForwardListenerSpec,
  ForwardListenerStats,
  ForwardReply,
  ForwardWorkerEvent,
} from "./forward_worker_types.ts";
import type { ListenerCloseReason } from "./room_types.ts";

const workerFailures = registry.counter(
  "parley_room_forward_worker_failures_total",
  "Room forward workers lost (crashed or unresponsive); their listeners closed",
);

/** The worker this request went to is gone (crashed, unresponsive or closed). */
export class ForwardWorkerLost extends ApiError {
  constructor(message: string) {
    super(503, "unavailable", message);
    this.name = "ForwardWorkerLost";
  }
}

/** What the host needs from one listener's main-side half (RemoteForwardListener). */
export interface ForwardWorkerClient {
  onConnected(): void;
  onSelect(source: ListenerSource): void;
  onClosed(reason: ListenerCloseReason): void;
  onStats(stats: ForwardListenerStats): void;
  onWorkerLost(reason: string): void;
}

export interface ForwardWorkerOptions {
  /** Names the worker's metrics (`worker="room-forward-<index>"`) and logs. */
  index: number;
  log?: Logger;
  /** Silence from a worker with listeners that counts as dead. Default 5000 ms. */
  deadAfterMs?: number;
  /** A worker that has not loaded its modules within this is lost. Default 30000 ms. */
  startTimeoutMs?: number;
  /** Bound on the polite shutdown in close(). Default 2000 ms. */
  closeTimeoutMs?: number;
  /** Starts the worker (a test keeps the handle to kill it). */
  spawn?: () => Worker;
  /**
   * Playout delay (ms): the worker sends each tick's packets this long after the tick was due, on its own
   * timer, so the main isolate's timer lateness and the message's trip are absorbed instead of widening the
   * listeners' packet gaps. 0 sends on arrival. Default DEFAULT_PLAYOUT_MS.
   */
  playoutMs?: number;
  /**
   * Nice steps below the main thread for the worker's thread, so its timer is not kept waiting behind the
   * main isolate on a busy core (the main isolate's own lateness is absorbed by the playout delay). Needs
   * CAP_SYS_NICE; without it nothing changes (logged). 0 leaves it alone. Default 5.
   */
  niceBoost?: number;
}

/**
 * Playout delay when none is given (the origin passes ROOM_FORWARD_PLAYOUT_MS, same default): above the main
 * isolate's tick lateness p99 with 300 listeners (docs/benchmarks.md).
 */
export const DEFAULT_PLAYOUT_MS = 30;

type OkReply = Extract<ForwardReply, { ok: true }>;

const defaultSpawn = (index: number) => () =>
  new Worker(new URL("./forward_worker.ts", import.meta.url), {
    type: "module",
    name: `room-forward-${index}`,
  });

export class ForwardWorker {
  readonly index: number;
  readonly #log: Logger;
  readonly #spawn: () => Worker;
  readonly #closeTimeoutMs: number;
  readonly #liveness: WorkerLiveness;
  readonly #metricsSource: string;
  #link: WorkerLink<ForwardCommand, ForwardWorkerEvent> | undefined;
  #nextSlot = 1;
  readonly #clients = new Map<number, ForwardWorkerClient>();
  /** This run's packets: payload → slots that get it (one message per synchronous run and tick). */
  #packets = new Map<Uint8Array, number[]>();
  /** The tick instant of the queued packets. */
  #packetsAt: number | undefined;
  readonly #playoutMs: number;
  readonly #niceBoost: number;
  #events: Array<[number, ListenerEvent]> = [];
  #flushQueued = false;
  #closing: Promise<void> | undefined;
  /** Worker deaths since this handle was created. */
  failures = 0;

  constructor(o: ForwardWorkerOptions) {
    this.index = o.index;
    this.#log = (o.log ?? rootLog).child({ component: "room_forward_worker", worker: o.index });
    this.#spawn = o.spawn ?? defaultSpawn(o.index);
    this.#closeTimeoutMs = o.closeTimeoutMs ?? 2000;
    this.#playoutMs = o.playoutMs ?? DEFAULT_PLAYOUT_MS;
    this.#niceBoost = o.niceBoost ?? 5;
    this.#metricsSource = `room-forward-${o.index}`;
    this.#liveness = new WorkerLiveness({
      deadAfterMs: o.deadAfterMs ?? 5000,
      startTimeoutMs: o.startTimeoutMs ?? 30_000,
      busy: () => this.#clients.size > 0 || (this.#link?.pending ?? 0) > 0,
      onDead: (reason) => this.#fail(`room forward ${reason}`),
    });
  }

  /** Listeners on this worker (placement: the pool picks the least loaded). */
  get load(): number {
    return this.#clients.size;
  }
  get running(): boolean {
    return this.#link !== undefined;
  }

  /**
   * Negotiate a listener in the worker; resolves with its slot and the answer SDP. The client gets the
   * listener's reports from now on (a `closed` can come before the answer: setup failed).
   */
  async start(
    spec: ForwardListenerSpec,
    offer: string,
    client: ForwardWorkerClient,
  ): Promise<{ slot: number; sdp: string }> {
    if (this.#closing) throw new ForwardWorkerLost("room forward worker closed");
    this.#ensure();
    const slot = this.#nextSlot++;
    this.#liveness.touchIfIdle();
    this.#clients.set(slot, client);
    try {
      const r = await this.#request({ type: "start", slot, spec, offer });
      return { slot, sdp: r.sdp ?? "" };
    } catch (err) {
      this.#clients.delete(slot);
      throw err;
    }
  }

  /** Queue a packet for a listener (sent with the rest of this run's packets of the same tick, `at`). */
  packet(slot: number, payload: Uint8Array, at?: number): void {
    // A clock catching up runs several ticks in one synchronous run: each tick's packets get their own message.
    if (this.#packets.size > 0 && at !== this.#packetsAt) this.#flush();
    this.#packetsAt = at;
    let slots = this.#packets.get(payload);
    if (!slots) this.#packets.set(payload, slots = []);
    slots.push(slot);
    this.#scheduleFlush();
  }

  /** Queue an event for a listener's `events` channel. */
  event(slot: number, ev: ListenerEvent): void {
    this.#events.push([slot, ev]);
    this.#scheduleFlush();
  }

  /** Close a listener in the worker; its client hears nothing more. */
  closeListener(slot: number, reason: ListenerCloseReason): void {
    if (!this.#clients.delete(slot)) return;
    this.#flush();
    this.#link?.post({ type: "close", slot, reason });
  }

  /** Peers open in the worker and how many still have timers (0/0 when no worker runs). */
  async count(): Promise<{ peers: number; timers: number }> {
    if (!this.#link) return { peers: 0, timers: 0 };
    const r = await this.#request({ type: "count" });
    return { peers: r.peers ?? 0, timers: r.timers ?? 0 };
  }

  #scheduleFlush(): void {
    if (this.#flushQueued) return;
    this.#flushQueued = true;
    queueMicrotask(() => this.#flush());
  }

  #flush(): void {
    this.#flushQueued = false;
    const link = this.#link;
    if (this.#packets.size > 0) {
      if (link) {
        const payloads: Uint8Array[] = [], slots: Int32Array[] = [];
        for (const [p, s] of this.#packets) {
          // A view into a larger buffer would be cloned whole: send only its bytes.
          payloads.push(p.byteLength === p.buffer.byteLength ? p : p.slice());
          slots.push(Int32Array.from(s));
        }
        const sentAt = performance.timeOrigin + performance.now();
        link.post({
          type: "packets",
          sentAt,
          at: this.#packetsAt,
          playoutMs: this.#playoutMs,
          payloads,
          slots,
        });
      }
      this.#packets = new Map();
    }
    if (this.#events.length > 0) {
      link?.post({ type: "events", items: this.#events });
      this.#events = [];
    }
  }

  /** A request to the current worker; its error reply is the ApiError it carries. */
  async #request(cmd: RequestOf<ForwardCommand>): Promise<OkReply> {
    const link = this.#link;
    if (!link) throw new ForwardWorkerLost("room forward worker gone");
    this.#flush();
    const r = await link.request(cmd);
    if (!r.ok) throw new ApiError(r.error.status, r.error.code, r.error.message);
    return r;
  }

  #ensure(): void {
    if (this.#link) return;
    this.#link = new WorkerLink(this.#spawn(), {
      name: "room forward worker",
      log: this.#log,
      liveness: this.#liveness,
      onEvent: (m) => this.#onEvent(m),
      onFail: (reason) => this.#fail(reason),
    });
    this.#link.post({ type: "init", niceBoost: this.#niceBoost });
    this.#log.info("room forward worker started");
  }

  #onEvent(m: Exclude<ForwardWorkerEvent, LinkEvent>): void {
    switch (m.type) {
      case "connected":
        return this.#tell(m.slot, (c) => c.onConnected());
      case "select":
        return this.#tell(m.slot, (c) => c.onSelect(m.source));
      case "closed": {
        const c = this.#clients.get(m.slot);
        this.#clients.delete(m.slot);
        if (c) this.#call(m.slot, () => c.onClosed(m.reason));
        return;
      }
      case "stats":
        registry.setRemote(this.#metricsSource, m.metrics);
        for (const s of m.items) this.#tell(s.slot, (c) => c.onStats(s));
        return;
    }
  }

  #tell(slot: number, fn: (c: ForwardWorkerClient) => void): void {
    const c = this.#clients.get(slot);
    if (c) this.#call(slot, () => fn(c));
  }

  #call(slot: number, fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.#log.error("forward listener report handler failed", { slot, err: err as Error });
    }
  }

  /** The worker is gone: every listener on it closes, every request fails. */
  #fail(reason: string): void {
    if (!this.#link) return;
    this.failures++;
    workerFailures.inc();
    this.#log.error("room forward worker lost", { reason, listeners: this.#clients.size });
    this.#teardown(reason);
  }

  #teardown(reason: string): void {
    const link = this.#link;
    if (!link) return;
    this.#link = undefined;
    link.close(new ForwardWorkerLost(reason));
    this.#packets = new Map();
    this.#events = [];
    const clients = [...this.#clients.values()];
    this.#clients.clear();
    for (const c of clients) {
      try {
        c.onWorkerLost(reason);
      } catch (err) {
        this.#log.error("forward worker-lost handler failed", { err: err as Error });
      }
    }
  }

  /** Polite shutdown (listeners closed, last metrics), bounded; then terminate. Idempotent. */
  close(): Promise<void> {
    return this.#closing ??= this.#close();
  }

  async #close(): Promise<void> {
    const link = this.#link;
    if (!link) return;
    await link.drain({ type: "shutdown" }, this.#closeTimeoutMs);
    if (this.#link === link) this.#teardown("room forward worker closed");
    this.#log.info("room forward worker closed");
  }
}
