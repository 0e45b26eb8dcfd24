/**
 * Realtime first: live session synthesis (and anything else marked live) keeps priority over batch TTS jobs on
 * the same origin. Batch job workers call `batchTurn()` before each chunk; it returns at once when nothing live
 * is pending and otherwise waits until live work drains. Live work registers either per call (`live()` returns
 * the function that ends it, `runLive(fn)` wraps a promise) or as a pressure source polled by the gate, e.g. the
 * session engine pool's queue: `livePriority.addSource(() => hub.stats().speechQueue)`.
 *
 * A chunk that is already synthesizing is not preempted (engines run synchronously in their worker), so a live
 * request waits at most for the batch chunks in flight: keep chunks short (the chunker caps them at 300 chars).
 */
import { registry } from "../../lib/metrics.ts";

const mYield = registry.counter(
  "parley_tts_batch_yield_seconds_total",
  "Time batch TTS workers waited for live synthesis to drain",
);

export class PriorityGate {
  #live = 0;
  readonly #sources = new Set<() => number>();
  #waiters: Array<() => void> = [];

  /** Mark one live synthesis as pending; call the returned function when it completes (idempotent). */
  live(): () => void {
    this.#live++;
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.#live--;
      if (this.pressure() === 0) this.#release();
    };
  }

  async runLive<T>(fn: () => Promise<T>): Promise<T> {
    const end = this.live();
    try {
      return await fn();
    } finally {
      end();
    }
  }

  /** A gauge of live work (queued live jobs, say). Returns an unregister function. */
  addSource(fn: () => number): () => void {
    this.#sources.add(fn);
    return () => {
      this.#sources.delete(fn);
      if (this.pressure() === 0) this.#release();
    };
  }

  pressure(): number {
    let p = this.#live;
    for (const s of this.#sources) {
      try {
        p += Math.max(0, s());
      } catch { /* a failing source counts as no pressure */ }
    }
    return p;
  }

  /**
   * Wait until no live work is pending (polls sources every `pollMs`), or at most `maxWaitMs` (> 0): the bound
   * is the jobs' guaranteed share under unending live load. Resolves with the ms waited.
   */
  async batchTurn(opts: { pollMs?: number; signal?: AbortSignal; maxWaitMs?: number } = {}): Promise<number> {
    if (this.pressure() === 0) return 0;
    const t0 = performance.now();
    const until = opts.maxWaitMs ? t0 + opts.maxWaitMs : Infinity;
    while (this.pressure() > 0 && !opts.signal?.aborted && performance.now() < until) {
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          this.#waiters = this.#waiters.filter((w) => w !== done);
          resolve();
        };
        const timer = setTimeout(done, Math.max(0, Math.min(opts.pollMs ?? 5, until - performance.now())));
        this.#waiters.push(done);
      });
    }
    const ms = performance.now() - t0;
    mYield.inc(undefined, ms / 1000);
    return ms;
  }

  #release(): void {
    const w = this.#waiters;
    this.#waiters = [];
    for (const f of w) f();
  }
}

/** The origin's gate (one per process). */
export const livePriority = new PriorityGate();
