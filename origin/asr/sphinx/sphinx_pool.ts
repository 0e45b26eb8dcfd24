/**
 * A bounded pool of PocketSphinx decoders. Building one costs a model load (a second of CPU, far more on a loaded
 * host) and tens of MB, so a worker builds its warm decoders at start (`prewarm`), lends them per utterance or
 * stream, resets them on release and reuses them; `refill()` (between jobs) builds a new warm one after a lend.
 *
 * Bounds: at most `maxDecoders` alive (lent + idle), plus at most one short-lived overflow decoder
 * (`takeOverflow`, for a confirmed result that cannot wait); at most `keepIdle` idle ones for good. A released
 * decoder beyond those is freed (`ps_free`, then the freed heap goes back to the OS), so a burst of sessions
 * does not leave its peak of native memory behind: at once, or with `idleTimeoutMs` once it has been idle that
 * long (`trimIdle()`), so that utterances coming and going at a steady rate do not free and rebuild a decoder
 * (a model load) every few seconds.
 *
 * With `asyncBuilds`, a model load never runs on the caller's thread after start-up: `take()` with none idle
 * starts a build on Deno's blocking pool and returns null (a stream keeps its audio meanwhile), and `refill()`
 * keeps `warmIdle` decoders ready the same way. A worker then goes on decoding its other streams while a decoder
 * is built, instead of stalling all of them for a model load.
 *
 * `acquire` waits (FIFO) while all are lent. `close()` frees every decoder, idle and lent, and rejects waiters;
 * a build still in flight is freed when it lands (`settled()` resolves then).
 */
import { registry } from "../../../lib/metrics.ts";
import { SphinxDecoder } from "./sphinx_decoder.ts";
import type { SphinxConfig } from "./sphinx_detect.ts";
import { sphinxConfigFromEnv } from "./sphinx_detect.ts";
import { SphinxClosedError } from "./sphinx_errors.ts";
import { trimNativeHeap } from "./native_heap.ts";

export interface SphinxPoolOptions {
  config?: SphinxConfig;
  /** Upper bound on native decoders alive at once (each holds its own model copy). Default 4. */
  maxDecoders?: number;
  /** Idle decoders kept on release; more are freed. Default 2 (at most `maxDecoders`). */
  keepIdle?: number;
  /** `refill()` builds idle decoders up to this many. Default 1 (at most `keepIdle`). */
  warmIdle?: number;
  /**
   * Idle decoders beyond `keepIdle` are kept this long before `trimIdle()` frees them. Default 0: freed on
   * release.
   */
  idleTimeoutMs?: number;
  /** The clock for idle times (tests). Default `performance.now`. */
  now?: () => number;
  /** How decoders are built; a test may count or fail them. */
  openDecoder?: (config: SphinxConfig) => SphinxDecoder;
  /** Build off the caller's thread after start-up (see above). Default false. */
  asyncBuilds?: boolean;
  /** How decoders are built off-thread. Default `SphinxDecoder.openAsync`. */
  openDecoderAsync?: (config: SphinxConfig) => Promise<SphinxDecoder>;
}

export interface SphinxPoolStats {
  idle: number;
  lent: number;
  waiting: number;
  /** Decoders built over the pool's life. */
  created: number;
  /** Decoders freed over the pool's life (beyond the idle bound, broken, or at close). */
  freed: number;
  /** Off-thread builds in flight. */
  building: number;
}

interface Waiter {
  resolve: (d: SphinxDecoder) => void;
  reject: (e: unknown) => void;
  signal?: AbortSignal;
  onAbort?: () => void;
}

const mWait = registry.histogram(
  "parley_sphinx_pool_wait_seconds",
  "Time acquire() waited for a free decoder",
  [0.001, 0.01, 0.1, 0.5, 1, 5],
);
const mBuilt = registry.counter(
  "parley_sphinx_decoders_built_total",
  "PocketSphinx decoders built by pools, by why (prewarm, refill, demand, overflow)",
);
const mFreed = registry.counter(
  "parley_sphinx_decoders_freed_total",
  "PocketSphinx decoders freed by pools, by why (surplus, broken, close)",
);

const mBuildFailed = registry.counter(
  "parley_sphinx_decoder_build_failures_total",
  "Off-thread PocketSphinx decoder builds that failed (the next take builds in place and reports the error)",
);

type BuildReason = "prewarm" | "refill" | "demand" | "overflow";

/** After an off-thread build failed, builds run in place for this long, so the error reaches a caller. */
const BUILD_FAILURE_BACKOFF_MS = 5_000;

export class SphinxPool {
  readonly config: SphinxConfig;
  readonly maxDecoders: number;
  readonly keepIdle: number;
  readonly warmIdle: number;
  readonly idleTimeoutMs: number;
  private readonly open: (config: SphinxConfig) => SphinxDecoder;
  private readonly openAsync: (config: SphinxConfig) => Promise<SphinxDecoder>;
  readonly asyncBuilds: boolean;
  private building = 0;
  private readonly inFlight = new Set<Promise<void>>();
  private lastBuildFailure = -Infinity;
  private readonly now: () => number;
  /** Oldest first; `take()` lends the most recently released (its running cepstral mean is the freshest). */
  private idle: SphinxDecoder[] = [];
  private readonly idleSince = new WeakMap<SphinxDecoder, number>();
  private readonly lent = new Set<SphinxDecoder>();
  private waiters: Waiter[] = [];
  private created = 0;
  private freed = 0;
  private isClosed = false;

  constructor(opts: SphinxPoolOptions = {}) {
    this.config = opts.config ?? sphinxConfigFromEnv();
    this.maxDecoders = Math.max(1, Math.floor(opts.maxDecoders ?? 4));
    this.keepIdle = Math.max(1, Math.min(this.maxDecoders, Math.floor(opts.keepIdle ?? 2)));
    this.warmIdle = Math.max(0, Math.min(this.keepIdle, Math.floor(opts.warmIdle ?? 1)));
    this.idleTimeoutMs = Math.max(0, opts.idleTimeoutMs ?? 0);
    this.open = opts.openDecoder ?? ((c) => SphinxDecoder.open(c));
    this.openAsync = opts.openDecoderAsync ?? ((c) => SphinxDecoder.openAsync(c));
    this.asyncBuilds = opts.asyncBuilds ?? false;
    this.now = opts.now ?? (() => performance.now());
  }

  get closed(): boolean {
    return this.isClosed;
  }

  /** Decoders alive now (lent and idle). */
  get alive(): number {
    return this.idle.length + this.lent.size;
  }

  stats(): SphinxPoolStats {
    return {
      idle: this.idle.length,
      lent: this.lent.size,
      waiting: this.waiters.length,
      created: this.created,
      freed: this.freed,
      building: this.building,
    };
  }

  /** Builds idle decoders now (up to `n`, within `keepIdle` and the bound) so the first users pay no model load. */
  prewarm(n = 1): void {
    this.assertOpen("prewarm");
    const target = Math.min(n, this.keepIdle);
    while (this.idle.length < target && this.alive < this.maxDecoders) {
      this.park(this.build("prewarm"));
    }
  }

  /**
   * Housekeeping between jobs: builds one idle decoder when fewer than `warmIdle` are idle and the bound allows.
   * True when it built one (the caller may call again).
   */
  refill(): boolean {
    if (this.isClosed) return false;
    if (this.offThread()) {
      while (
        this.idle.length + this.building < this.warmIdle && this.alive + this.building < this.maxDecoders
      ) {
        this.buildOffThread("refill");
      }
      return false;
    }
    if (this.idle.length >= this.warmIdle || this.alive >= this.maxDecoders) return false;
    this.park(this.build("refill"));
    return true;
  }

  /**
   * Frees idle decoders beyond `keepIdle` that have been idle for `idleTimeoutMs` (oldest first). Cheap when
   * there is nothing to free; returns how many it freed.
   */
  trimIdle(): number {
    if (this.isClosed) return 0;
    const now = this.now();
    let n = 0;
    while (this.idle.length > this.keepIdle) {
      const oldest = this.idle[0];
      if (now - (this.idleSince.get(oldest) ?? now) < this.idleTimeoutMs) break;
      this.idle.shift();
      this.free(oldest, "surplus", false);
      n++;
    }
    if (n > 0) trimNativeHeap();
    return n;
  }

  /**
   * A decoder now, without waiting: an idle one, or a new one within the bound; null when all are lent. With
   * off-thread builds, null while the build it started (one per call with `build`) is in flight.
   */
  take(build = true): SphinxDecoder | null {
    this.assertOpen("take");
    const ready = this.idle.pop();
    if (ready) return this.lend(ready);
    if (this.offThread()) {
      // One build per caller that found none (a caller asking again passes `build = false`): a burst of new
      // utterances gets as many builds, within the bound.
      if (build && this.alive + this.building < this.maxDecoders) this.buildOffThread("demand");
      return null;
    }
    if (!build) return null;
    if (this.alive < this.maxDecoders) return this.lend(this.build("demand"));
    return null;
  }

  /** Resolves once no off-thread build is in flight (after `close()`: once the last one has been freed). */
  async settled(): Promise<void> {
    while (this.inFlight.size) await Promise.allSettled([...this.inFlight]);
  }

  /**
   * A decoder beyond the bound, for work that cannot wait (a serial worker cannot wait for a release). It is
   * freed on release, since the pool is then over its bound or its idle limit.
   */
  takeOverflow(): SphinxDecoder {
    this.assertOpen("takeOverflow");
    return this.take() ?? this.lend(this.build("overflow"));
  }

  /** A decoder ready for `start()`. Waits while all `maxDecoders` are lent; rejects once the pool is closed. */
  acquire(signal?: AbortSignal): Promise<SphinxDecoder> {
    if (this.isClosed) {
      return Promise.reject(new SphinxClosedError("sphinx pool is closed (acquire after close)"));
    }
    if (signal?.aborted) return Promise.reject(signal.reason);
    try {
      const d = this.take();
      if (d) return Promise.resolve(d);
    } catch (e) {
      return Promise.reject(e);
    }
    const t0 = performance.now();
    return new Promise<SphinxDecoder>((resolve, reject) => {
      const w: Waiter = {
        resolve: (d) => {
          mWait.observe((performance.now() - t0) / 1000);
          resolve(d);
        },
        reject,
        signal,
      };
      if (signal) {
        w.onAbort = () => {
          this.waiters = this.waiters.filter((x) => x !== w);
          reject(signal.reason);
        };
        signal.addEventListener("abort", w.onAbort, { once: true });
      }
      this.waiters.push(w);
    });
  }

  /**
   * Returns a lent decoder: reset and handed to a waiter or kept idle; freed when the pool is closed, the decoder
   * broken, or it would exceed the bound or the idle limit.
   */
  release(decoder: SphinxDecoder): void {
    if (!this.lent.delete(decoder)) {
      if (this.isClosed) return; // close() already freed it
      throw new Error("release() of a decoder this pool did not lend");
    }
    if (this.isClosed || decoder.closed) {
      this.free(decoder, this.isClosed ? "close" : "broken");
      return;
    }
    try {
      decoder.reset();
    } catch {
      this.free(decoder, "broken");
      this.serveWaiterWithNew();
      return;
    }
    const w = this.waiters.shift();
    if (w) {
      this.detach(w);
      w.resolve(this.lend(decoder));
    } else if (
      (this.idle.length < this.keepIdle || this.idleTimeoutMs > 0) && this.alive < this.maxDecoders
    ) {
      this.park(decoder);
    } else {
      this.free(decoder, "surplus");
    }
  }

  /** Frees every decoder (idle and lent) and rejects pending acquires. Idempotent. */
  close(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    const err = new SphinxClosedError("sphinx pool closed while waiting for a decoder");
    for (const w of this.waiters.splice(0)) {
      this.detach(w);
      w.reject(err);
    }
    const all = [...this.idle, ...this.lent];
    this.idle = [];
    this.lent.clear();
    for (const d of all) this.free(d, "close", false);
    trimNativeHeap();
  }

  private offThread(): boolean {
    return this.asyncBuilds && this.now() - this.lastBuildFailure >= BUILD_FAILURE_BACKOFF_MS;
  }

  /** A build on the blocking pool; when it lands the decoder serves a waiter, or waits idle, or is freed. */
  private buildOffThread(reason: "refill" | "demand"): void {
    this.building++;
    const p = this.openAsync(this.config).then(
      (d) => {
        this.building--;
        this.created++;
        mBuilt.inc({ reason });
        if (this.isClosed) {
          this.free(d, "close");
          return;
        }
        const w = this.waiters.shift();
        if (w) {
          this.detach(w);
          w.resolve(this.lend(d));
        } else {
          this.park(d);
        }
      },
      () => {
        this.building--;
        this.lastBuildFailure = this.now();
        mBuildFailed.inc();
      },
    ).finally(() => this.inFlight.delete(p));
    this.inFlight.add(p);
  }

  private build(reason: BuildReason): SphinxDecoder {
    const d = this.open(this.config);
    this.created++;
    mBuilt.inc({ reason });
    return d;
  }

  private free(d: SphinxDecoder, reason: "surplus" | "broken" | "close", trim = true): void {
    const wasOpen = !d.closed;
    d.close();
    this.freed++;
    mFreed.inc({ reason });
    if (wasOpen && trim) trimNativeHeap();
  }

  private park(d: SphinxDecoder): void {
    this.idleSince.set(d, this.now());
    this.idle.push(d);
  }

  private lend(d: SphinxDecoder): SphinxDecoder {
    this.lent.add(d);
    return d;
  }

  /** A broken decoder left a slot free: a waiting acquire gets a fresh decoder. */
  private serveWaiterWithNew(): void {
    const w = this.waiters.shift();
    if (!w) return;
    this.detach(w);
    try {
      w.resolve(this.lend(this.build("demand")));
    } catch (e) {
      w.reject(e);
    }
  }

  private detach(w: Waiter): void {
    if (w.signal && w.onAbort) w.signal.removeEventListener("abort", w.onAbort);
  }

  private assertOpen(what: string): void {
    if (this.isClosed) throw new SphinxClosedError(`sphinx pool is closed (${what} after close)`);
  }
}
