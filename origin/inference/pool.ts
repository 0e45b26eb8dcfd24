/**
 * A supervised pool of inference workers (Deno Web Workers) shared by all sessions of the process.
 *
 * - Bounded priority queue: `urgent` (a streaming recognizer's end of utterance: the confirmed result a user
 *   waits for) > `high` (confirmed decodes, VAD, streaming audio) > `normal` (synthesis) > `low` (partial
 *   decodes) > `background` (uploaded files: never shed, but every live job overtakes it).
 *   `low` jobs are refused with `OverloadedError` once the queue holds `lowQueueLimit` jobs, and a queued job with
 *   the same `coalesceKey` is superseded by a newer one (only the freshest partial per session waits). Other
 *   priorities are refused only at `queueLimit`.
 * - Supervision: a worker that crashes (uncaught error), fails to init in `initTimeoutMs`, or runs a job past
 *   `jobTimeoutMs` is terminated and respawned with backoff; its in-flight job is retried once (if `retry`),
 *   otherwise rejected with `WorkerCrashedError`.
 * - `close()` is idempotent and cascades: queued and in-flight jobs reject with ClosedError, every worker gets a
 *   polite `close` (engines released) and is terminated after `closeTimeoutMs` at the latest; later `submit`
 *   calls reject with ClosedError.
 * - A job that fails in the worker rejects with an error of the class the worker threw (./errors.ts).
 * - Pinned jobs (`worker`, from `pin()`): state kept in one worker (a recognition stream) is only reachable
 *   there, so such jobs run on that worker, in submission order per owner whatever their priority (a pinned job
 *   that overtakes others lifts its owner's earlier queued jobs along, just ahead of it), and never elsewhere:
 *   once that worker dies (or was replaced) they reject with WorkerCrashedError, and are never retried.
 */
import type { FromWorker, Job, JobResult, ToWorker, WorkerInit } from "./protocol.ts";
import {
  fromWire,
  JobCancelledError,
  OverloadedError,
  SupersededError,
  WorkerCrashedError,
} from "./errors.ts";
import { ClosedError } from "../../lib/closed_error.ts";
import { log as rootLog } from "../../lib/log.ts";
import { registry } from "../../lib/metrics.ts";

export type Priority = "urgent" | "high" | "normal" | "low" | "background";
const PRIORITY_RANK: Record<Priority, number> = { urgent: 0, high: 1, normal: 2, low: 3, background: 4 };

export interface PoolOptions {
  name: string;
  size: number;
  init: WorkerInit;
  queueLimit?: number;
  lowQueueLimit?: number;
  initTimeoutMs?: number;
  jobTimeoutMs?: number;
  closeTimeoutMs?: number;
  /** Override the worker script (tests). */
  workerUrl?: URL;
}

export interface SubmitOptions {
  priority?: Priority;
  /** Session (or other owner) id: `cancelOwner` rejects its queued jobs. */
  owner?: string;
  /** A newer queued job with the same key replaces the older one (which rejects with SupersededError). */
  coalesceKey?: string;
  /** Retry once on another worker if the worker crashes while running it. */
  retry?: boolean;
  /** Transfer (not copy) the job's audio buffer to the worker; the caller must not reuse it. Not with retry. */
  transfer?: boolean;
  /** Run on this worker only (state that lives there). */
  worker?: WorkerPin;
  /** This job's run-time limit instead of the pool's `jobTimeoutMs` (e.g. a job that loads a model). */
  timeoutMs?: number;
}

/** One worker incarnation: a respawned worker at the same index is another one. */
export interface WorkerPin {
  readonly index: number;
  readonly generation: number;
}

interface QueuedJob {
  id: number;
  job: Job;
  opts: SubmitOptions;
  enqueuedAt: number;
  attempts: number;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
}

type SlotState = "starting" | "idle" | "busy" | "dead";

interface Slot {
  index: number;
  worker: Worker | null;
  state: SlotState;
  job: QueuedJob | null;
  jobTimer?: ReturnType<typeof setTimeout>;
  initTimer?: ReturnType<typeof setTimeout>;
  restarts: number;
  generation: number;
  /** Pins handed out for this incarnation and not yet released. */
  pins: number;
  ready?: { resolve: () => void; reject: (e: unknown) => void };
  closed?: () => void;
}

const mQueue = registry.gauge("parley_inference_queue_depth", "Jobs waiting for an inference worker");
const mBusy = registry.gauge("parley_inference_workers_busy", "Inference workers running a job");
const mJobs = registry.counter("parley_inference_jobs_total", "Inference jobs by pool, kind and outcome");
const mWait = registry.histogram("parley_inference_queue_wait_seconds", "Time jobs waited in the queue", [
  0.001,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
]);
const mRun = registry.histogram("parley_inference_run_seconds", "Time a worker spent on a job", [
  0.001,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
]);
const mRestarts = registry.counter("parley_inference_worker_restarts_total", "Inference worker restarts");

const pools = new Set<InferencePool>();
mQueue.collect(() =>
  [...pools].map((p) => [{ pool: p.name }, p.queueDepth] as [Record<string, string>, number])
);
mBusy.collect(() =>
  [...pools].map((p) => [{ pool: p.name }, p.busyCount] as [Record<string, string>, number])
);

export class InferencePool {
  readonly name: string;
  private readonly opts: Required<Omit<PoolOptions, "workerUrl">> & { workerUrl: URL };
  private readonly slots: Slot[] = [];
  private queue: QueuedJob[] = [];
  private nextId = 1;
  private _state: "starting" | "ready" | "closed" = "starting";
  private closing: Promise<void> | null = null;
  private readonly log;

  constructor(options: PoolOptions) {
    this.name = options.name;
    this.opts = {
      queueLimit: 1000,
      lowQueueLimit: Math.max(2, options.size * 2),
      initTimeoutMs: 60_000,
      jobTimeoutMs: 30_000,
      closeTimeoutMs: 2_000,
      workerUrl: new URL("./inference_worker.ts", import.meta.url),
      ...options,
    };
    this.log = rootLog.child({ component: "inference_pool", pool: this.name });
    pools.add(this);
  }

  /** Pools not yet closed in this process, with their live worker counts (ops, leak tests). */
  static live(): Array<{ name: string; liveWorkers: number }> {
    return [...pools].map((p) => ({ name: p.name, liveWorkers: p.liveWorkers }));
  }

  /** Spawn all workers and wait until each has loaded its engines. Rejects if any fails to init. */
  static async create(options: PoolOptions): Promise<InferencePool> {
    const p = new InferencePool(options);
    try {
      await Promise.all(Array.from({ length: options.size }, (_, i) => p.spawn(i)));
      p._state = "ready";
    } catch (e) {
      await p.close();
      throw e;
    }
    return p;
  }

  get state(): "starting" | "ready" | "closed" {
    return this._state;
  }
  get size(): number {
    return this.opts.size;
  }
  get queueDepth(): number {
    return this.queue.length;
  }
  /** Queued jobs other than `background` ones (what live work waits behind). */
  get liveQueueDepth(): number {
    return this.liveQueued();
  }
  get busyCount(): number {
    return this.slots.filter((s) => s.state === "busy").length;
  }
  /** Workers currently alive (not terminated). */
  get liveWorkers(): number {
    return this.slots.filter((s) => s.worker !== null).length;
  }
  get healthy(): boolean {
    return this._state === "ready" && this.slots.some((s) => s.state === "idle" || s.state === "busy");
  }

  /**
   * A live worker for state that must stay in one place (the least pinned one), or null when none is alive.
   * Give it back with `unpin` when that state is gone.
   */
  pin(): WorkerPin | null {
    const live = this.slots.filter((s) => s.state === "idle" || s.state === "busy");
    if (!live.length) return null;
    const slot = live.reduce((a, b) => (b.pins < a.pins ? b : a));
    slot.pins++;
    return { index: slot.index, generation: slot.generation };
  }

  unpin(pin: WorkerPin): void {
    const slot = this.slots[pin.index];
    if (slot && slot.generation === pin.generation && slot.pins > 0) slot.pins--;
  }

  /** Whether a pinned worker is still the same live incarnation. */
  pinAlive(pin: WorkerPin): boolean {
    const slot = this.slots[pin.index];
    return !!slot && slot.generation === pin.generation && slot.state !== "dead" && slot.worker !== null;
  }

  submit<J extends Job>(job: J, opts: SubmitOptions = {}): Promise<JobResult<J>> {
    if (this._state === "closed") return Promise.reject(new ClosedError(`pool ${this.name}`));
    if (opts.worker && !this.pinAlive(opts.worker)) {
      mJobs.inc({ pool: this.name, kind: job.kind, outcome: "crashed" });
      return Promise.reject(
        new WorkerCrashedError(`worker ${this.name}-${opts.worker.index} of this job is gone`),
      );
    }
    const priority = opts.priority ?? "normal";
    if (opts.coalesceKey) {
      const i = this.queue.findIndex((q) => q.opts.coalesceKey === opts.coalesceKey);
      if (i >= 0) {
        const [old] = this.queue.splice(i, 1);
        mJobs.inc({ pool: this.name, kind: old.job.kind, outcome: "superseded" });
        old.reject(new SupersededError("superseded by a newer job"));
      }
    }
    // background jobs wait behind partials; they must not make live partials look overloaded
    if (priority === "low" && this.liveQueued() >= this.opts.lowQueueLimit) {
      mJobs.inc({ pool: this.name, kind: job.kind, outcome: "overloaded" });
      return Promise.reject(new OverloadedError(`pool ${this.name}: queue full (${this.queue.length})`));
    }
    if (this.queue.length >= this.opts.queueLimit) {
      mJobs.inc({ pool: this.name, kind: job.kind, outcome: "overloaded" });
      return Promise.reject(
        new OverloadedError(`pool ${this.name}: queue limit ${this.opts.queueLimit} reached`),
      );
    }
    return new Promise<JobResult<J>>((resolve, reject) => {
      const q: QueuedJob = {
        id: this.nextId++,
        job,
        opts: { ...opts, priority },
        enqueuedAt: performance.now(),
        attempts: 0,
        resolve: resolve as (v: unknown) => void,
        reject,
      };
      this.enqueue(q);
      this.dispatch();
    });
  }

  /**
   * Inserts after the last job of the same or higher priority (FIFO within a priority). A pinned job with an
   * owner keeps its owner's order: the owner's earlier queued jobs that it overtook move, in their order, to
   * just ahead of it (a stream's end must not run before the audio queued for it).
   */
  private enqueue(q: QueuedJob): void {
    const rank = PRIORITY_RANK[q.opts.priority!];
    let at = this.queue.length;
    while (at > 0 && PRIORITY_RANK[this.queue[at - 1].opts.priority!] > rank) at--;
    const owner = q.opts.worker ? q.opts.owner : undefined;
    if (owner !== undefined) {
      const overtaken = this.queue.filter((j, i) => i >= at && j.opts.worker && j.opts.owner === owner);
      if (overtaken.length) {
        this.queue = this.queue.filter((j) => !overtaken.includes(j));
        this.queue.splice(at, 0, ...overtaken);
        at += overtaken.length;
      }
    }
    this.queue.splice(at, 0, q);
  }

  private liveQueued(): number {
    let n = 0;
    for (const q of this.queue) if (q.opts.priority !== "background") n++;
    return n;
  }

  /**
   * Raise the priority of a queued job (by coalesce key), e.g. a speculative decode whose result became needed:
   * avoids priority inversion behind other sessions' high-priority work. No-op if it is already running.
   */
  promote(coalesceKey: string, priority: Priority): boolean {
    const i = this.queue.findIndex((q) => q.opts.coalesceKey === coalesceKey);
    if (i < 0) return false;
    const [q] = this.queue.splice(i, 1);
    q.opts = { ...q.opts, priority, coalesceKey: undefined };
    this.enqueue(q);
    this.dispatch();
    return true;
  }

  /** Reject the queued (not yet running) jobs of an owner; running ones finish but their result is theirs. */
  cancelOwner(owner: string): number {
    const mine = this.queue.filter((q) => q.opts.owner === owner);
    if (!mine.length) return 0;
    this.queue = this.queue.filter((q) => q.opts.owner !== owner);
    for (const q of mine) {
      mJobs.inc({ pool: this.name, kind: q.job.kind, outcome: "cancelled" });
      q.reject(new JobCancelledError("cancelled"));
    }
    return mine.length;
  }

  close(): Promise<void> {
    if (this.closing) return this.closing;
    this._state = "closed";
    this.closing = (async () => {
      const err = new ClosedError(`pool ${this.name}`);
      for (const q of this.queue.splice(0)) q.reject(err);
      await Promise.all(this.slots.map((s) => this.stopSlot(s, err)));
      // a closed pool's workers are gone for good: their metrics leave /metrics with them
      for (const s of this.slots) registry.setRemote(`${this.name}-${s.index}`, null);
      pools.delete(this);
      this.log.info("pool closed");
    })();
    return this.closing;
  }

  // ---------- internals ----------

  private spawn(index: number): Promise<void> {
    const prev = this.slots[index];
    const slot: Slot = prev ??
      { index, worker: null, state: "starting", job: null, restarts: 0, generation: 0, pins: 0 };
    this.slots[index] = slot;
    slot.generation++;
    slot.pins = 0;
    const gen = slot.generation;
    slot.state = "starting";
    const worker = new Worker(this.opts.workerUrl, { type: "module", name: `${this.name}-${index}` });
    slot.worker = worker;
    const ready = new Promise<void>((resolve, reject) => (slot.ready = { resolve, reject }));
    slot.initTimer = setTimeout(
      () =>
        this.onFailure(slot, gen, new WorkerCrashedError(`init timeout after ${this.opts.initTimeoutMs} ms`)),
      this.opts.initTimeoutMs,
    );
    worker.onmessage = (e: MessageEvent<FromWorker>) => this.onMessage(slot, gen, e.data);
    worker.onerror = (e: ErrorEvent) => {
      e.preventDefault(); // keep the main isolate alive
      this.onFailure(slot, gen, new WorkerCrashedError(`worker crashed: ${e.message}`));
    };
    worker.onmessageerror = () => this.onFailure(slot, gen, new WorkerCrashedError("worker message error"));
    this.post(slot, { type: "init", init: this.opts.init });
    return ready;
  }

  private post(slot: Slot, msg: ToWorker, transfer: Transferable[] = []): void {
    slot.worker?.postMessage(msg, transfer);
  }

  private onMessage(slot: Slot, gen: number, msg: FromWorker): void {
    if (gen !== slot.generation) return;
    switch (msg.type) {
      case "ready":
        clearTimeout(slot.initTimer);
        slot.state = "idle";
        this.log.info("worker ready", {
          worker: slot.index,
          loaded: msg.loaded,
          load_ms: Math.round(msg.loadMs),
        });
        slot.ready?.resolve();
        slot.ready = undefined;
        this.dispatch();
        break;
      case "init_error":
        clearTimeout(slot.initTimer);
        this.log.error("worker init failed", { worker: slot.index, error: msg.error });
        slot.ready?.reject(new WorkerCrashedError(`inference worker init failed: ${msg.error}`));
        slot.ready = undefined;
        this.terminate(slot);
        slot.state = "dead";
        if (this._state === "ready") this.scheduleRestart(slot);
        break;
      case "result": {
        const q = slot.job;
        clearTimeout(slot.jobTimer);
        slot.job = null;
        slot.state = "idle";
        if (q && q.id === msg.id) {
          mRun.observe(msg.busyMs / 1000, { pool: this.name, kind: q.job.kind });
          mJobs.inc({ pool: this.name, kind: q.job.kind, outcome: msg.ok ? "ok" : "error" });
          if (msg.ok) q.resolve(msg.value);
          else q.reject(fromWire(msg.error));
        }
        this.dispatch();
        break;
      }
      case "metrics":
        registry.setRemote(`${this.name}-${slot.index}`, msg.families);
        break;
      case "closed":
        slot.closed?.();
        break;
    }
  }

  private onFailure(slot: Slot, gen: number, err: Error): void {
    if (gen !== slot.generation || slot.state === "dead") return;
    clearTimeout(slot.initTimer);
    clearTimeout(slot.jobTimer);
    this.log.warn("inference worker failed; restarting", { worker: slot.index, error: err.message });
    this.terminate(slot);
    slot.state = "dead";
    slot.ready?.reject(err);
    slot.ready = undefined;
    const q = slot.job;
    slot.job = null;
    // jobs pinned to this worker can never run now
    const pinned = this.queue.filter((j) => j.opts.worker?.index === slot.index);
    if (pinned.length) {
      this.queue = this.queue.filter((j) => j.opts.worker?.index !== slot.index);
      for (const j of pinned) {
        mJobs.inc({ pool: this.name, kind: j.job.kind, outcome: "crashed" });
        j.reject(err);
      }
    }
    if (q) {
      if (q.opts.retry && !q.opts.worker && q.attempts < 2 && this._state !== "closed") {
        this.queue.unshift(q);
      } else {
        mJobs.inc({ pool: this.name, kind: q.job.kind, outcome: "crashed" });
        q.reject(err);
      }
    }
    if (this._state !== "closed") this.scheduleRestart(slot);
  }

  private scheduleRestart(slot: Slot): void {
    const delay = Math.min(5000, 100 * 2 ** Math.min(slot.restarts, 6));
    slot.restarts++;
    mRestarts.inc({ pool: this.name });
    setTimeout(() => {
      if (this._state === "closed" || slot.state !== "dead") return;
      this.spawn(slot.index).then(
        () => (slot.restarts = 0),
        () => {/* failure handled by onFailure/init_error */},
      );
    }, delay);
  }

  private dispatch(): void {
    if (this._state === "closed") return;
    for (const slot of this.slots) {
      if (!this.queue.length) return;
      if (slot.state !== "idle") continue;
      const at = this.queue.findIndex((j) => !j.opts.worker || j.opts.worker.index === slot.index);
      if (at < 0) continue;
      const [q] = this.queue.splice(at, 1);
      if (q.opts.worker && q.opts.worker.generation !== slot.generation) {
        mJobs.inc({ pool: this.name, kind: q.job.kind, outcome: "crashed" });
        q.reject(new WorkerCrashedError(`worker ${this.name}-${slot.index} of this job was replaced`));
        this.dispatch();
        return;
      }
      q.attempts++;
      slot.state = "busy";
      slot.job = q;
      mWait.observe((performance.now() - q.enqueuedAt) / 1000, {
        pool: this.name,
        priority: q.opts.priority!,
      });
      const gen = slot.generation;
      const timeoutMs = q.opts.timeoutMs ?? this.opts.jobTimeoutMs;
      slot.jobTimer = setTimeout(
        () => this.onFailure(slot, gen, new WorkerCrashedError(`job timeout after ${timeoutMs} ms`)),
        timeoutMs,
      );
      const transfer = q.opts.transfer && !q.opts.retry &&
          (q.job.kind === "asr" || q.job.kind === "stream_feed" || q.job.kind === "stream_finish")
        ? [q.job.pcm16k.buffer as ArrayBuffer]
        : [];
      this.post(slot, { type: "job", id: q.id, job: q.job }, transfer);
    }
  }

  private terminate(slot: Slot): void {
    try {
      slot.worker?.terminate();
    } catch { /* already gone */ }
    slot.worker = null;
  }

  private async stopSlot(slot: Slot, err: Error): Promise<void> {
    clearTimeout(slot.initTimer);
    clearTimeout(slot.jobTimer);
    slot.ready?.reject(err);
    slot.ready = undefined;
    const q = slot.job;
    slot.job = null;
    if (q) q.reject(err);
    if (slot.worker && slot.state !== "starting" && slot.state !== "dead") {
      // Polite close (engines release their sessions), bounded by closeTimeoutMs.
      const done = new Promise<void>((r) => (slot.closed = r));
      this.post(slot, { type: "close" });
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([done, new Promise<void>((r) => (timer = setTimeout(r, this.opts.closeTimeoutMs)))]);
      clearTimeout(timer);
    }
    slot.generation++;
    this.terminate(slot);
    slot.state = "dead";
  }
}
