/**
 * Whether a media worker (a Deno Worker owned by a handle in the main isolate) is still alive: a worker that
 * has not loaded its modules (`ready`) within `startTimeoutMs`, or that stays silent for `deadAfterMs` while
 * it has work outstanding (a hang, or a worker terminated behind the handle's back), is reported dead once
 * through `onDead`. A stall of this isolate itself is not the worker's silence: its messages are waiting in
 * the queue, so a late check forgives it.
 */
export interface WorkerLivenessOptions {
  deadAfterMs: number;
  startTimeoutMs: number;
  /** Whether the worker has work outstanding (silence from an idle worker is fine). */
  busy: () => boolean;
  onDead: (reason: string) => void;
}

export class WorkerLiveness {
  readonly #o: WorkerLivenessOptions;
  #lastHeard = 0;
  #ready = false;
  #spawnedAt = 0;
  #timer: ReturnType<typeof setInterval> | undefined;
  #due = 0;

  constructor(o: WorkerLivenessOptions) {
    this.#o = o;
  }

  get ready(): boolean {
    return this.#ready;
  }

  /** A worker was spawned: checks start (every deadAfterMs/4, 20–500 ms). */
  start(): void {
    this.stop();
    const now = performance.now();
    this.#lastHeard = this.#spawnedAt = now;
    this.#ready = false;
    const every = Math.max(20, Math.min(500, this.#o.deadAfterMs / 4));
    this.#due = now + every;
    this.#timer = setInterval(() => this.#check(every), every);
  }

  /** The worker posted anything. */
  heard(): void {
    this.#lastHeard = performance.now();
  }

  /** The worker posted `ready` (its modules loaded): from now on silence counts. */
  markReady(): void {
    this.#ready = true;
    this.heard();
  }

  /** Work is about to be handed to an idle worker: its silence so far does not count. */
  touchIfIdle(): void {
    if (!this.#o.busy()) this.heard();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  #check(every: number): void {
    const now = performance.now();
    const late = now - this.#due;
    this.#due = now + every;
    // Loading (and, under `deno test`, type-checking) the worker's modules can take seconds on a busy machine.
    if (!this.#ready) {
      if (now - this.#spawnedAt > this.#o.startTimeoutMs) {
        this.stop();
        this.#o.onDead(`worker did not start within ${this.#o.startTimeoutMs} ms`);
      }
      return;
    }
    if (late > this.#o.deadAfterMs / 2) {
      this.#lastHeard = now;
      return;
    }
    if (this.#o.busy() && now - this.#lastHeard > this.#o.deadAfterMs) {
      this.stop();
      this.#o.onDead(`worker unresponsive for ${Math.round(now - this.#lastHeard)} ms`);
    }
  }
}
