/**
 * A bounded pool of PocketSphinx decoders. Building one costs a model load (most of a second), so decoders are
 * made lazily up to `maxDecoders`, lent out per stream or utterance, reset on release and reused. When all are
 * lent, `acquire` waits (FIFO) for a release. `close()` frees every decoder, idle and lent, and rejects waiters.
 */
import { registry } from "../../../lib/metrics.ts";
import { SphinxDecoder } from "./sphinx_decoder.ts";
import type { SphinxConfig } from "./sphinx_detect.ts";
import { sphinxConfigFromEnv } from "./sphinx_detect.ts";
import { SphinxClosedError } from "./sphinx_errors.ts";

export interface SphinxPoolOptions {
  config?: SphinxConfig;
  /** Upper bound on native decoders alive at once (each holds its own model copy). Default 4. */
  maxDecoders?: number;
  /** How decoders are built; a test may count or fail them. */
  openDecoder?: (config: SphinxConfig) => SphinxDecoder;
}

export interface SphinxPoolStats {
  idle: number;
  lent: number;
  waiting: number;
  /** Decoders built over the pool's life. */
  created: number;
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
  [
    0.001,
    0.01,
    0.1,
    0.5,
    1,
    5,
  ],
);

export class SphinxPool {
  readonly config: SphinxConfig;
  readonly maxDecoders: number;
  private readonly open: (config: SphinxConfig) => SphinxDecoder;
  private idle: SphinxDecoder[] = [];
  private readonly lent = new Set<SphinxDecoder>();
  private waiters: Waiter[] = [];
  private created = 0;
  private isClosed = false;

  constructor(opts: SphinxPoolOptions = {}) {
    this.config = opts.config ?? sphinxConfigFromEnv();
    this.maxDecoders = Math.max(1, Math.floor(opts.maxDecoders ?? 4));
    this.open = opts.openDecoder ?? ((c) => SphinxDecoder.open(c));
  }

  get closed(): boolean {
    return this.isClosed;
  }

  stats(): SphinxPoolStats {
    return {
      idle: this.idle.length,
      lent: this.lent.size,
      waiting: this.waiters.length,
      created: this.created,
    };
  }

  /** Builds idle decoders now (up to `n`, within the bound) so the first streams do not pay the model load. */
  prewarm(n = 1): void {
    this.assertOpen("prewarm");
    while (this.idle.length + this.lent.size < Math.min(n, this.maxDecoders)) {
      this.idle.push(this.build());
    }
  }

  /** A decoder ready for `start()`. Waits while all `maxDecoders` are lent; rejects once the pool is closed. */
  acquire(signal?: AbortSignal): Promise<SphinxDecoder> {
    if (this.isClosed) {
      return Promise.reject(new SphinxClosedError("sphinx pool is closed (acquire after close)"));
    }
    if (signal?.aborted) return Promise.reject(signal.reason);
    const ready = this.idle.pop();
    if (ready) return Promise.resolve(this.lend(ready));
    if (this.lent.size < this.maxDecoders) {
      try {
        return Promise.resolve(this.lend(this.build()));
      } catch (e) {
        return Promise.reject(e);
      }
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

  /** Returns a lent decoder: it is reset and reused, or freed if the pool is closed or the decoder broken. */
  release(decoder: SphinxDecoder): void {
    if (!this.lent.delete(decoder)) {
      if (this.isClosed) return; // close() already freed it
      throw new Error("release() of a decoder this pool did not lend");
    }
    if (this.isClosed || decoder.closed) {
      decoder.close();
      return;
    }
    try {
      decoder.reset();
    } catch {
      decoder.close();
      this.serveWaiterWithNew();
      return;
    }
    const w = this.waiters.shift();
    if (w) {
      this.detach(w);
      w.resolve(this.lend(decoder));
    } else {
      this.idle.push(decoder);
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
    for (const d of all) d.close();
  }

  private build(): SphinxDecoder {
    const d = this.open(this.config);
    this.created++;
    return d;
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
      w.resolve(this.lend(this.build()));
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
