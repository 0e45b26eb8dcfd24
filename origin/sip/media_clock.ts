/**
 * The origin's one RTP send clock (it runs in the RTP worker, rtp_worker.ts): a single timer ticks every 20 ms and, in one pass, sends every call's due
 * packet, then lets every call prepare (pull, resample, encode) its next packet. One timer instead of one per
 * call means one wake-up per period instead of one per call, and sending first means a call's send instant does
 * not wait behind any call's audio preparation.
 *
 * Drift-corrected: tick n is due at t0 + n·period on the monotonic clock and each timeout is computed from that
 * schedule, so timer lateness never accumulates. A late pass catches up at most `maxCatchUpPerPass` ticks (a
 * burst of two packets, which a phone's jitter buffer absorbs); the rest of a small backlog follows on the next
 * passes, scheduled at once. A backlog beyond `maxBacklog` ticks (an event-loop or scheduler stall) is not sent
 * at all: those ticks are skipped, members are told how many so their RTP timestamps keep wall-clock time (the
 * phone hears a gap, as after packet loss, instead of a delay that never goes away), and the skip is counted.
 *
 * Precise mode (the RTP worker's clock): a timer wakes the thread `leadMs` before the due instant, so messages
 * and datagrams that arrived meanwhile are handled first; then `Atomics.wait` sleeps until `spinMs` before it,
 * and a short spin ends exactly on it. A timer alone fires up to about a millisecond late, which a 20 ms gap
 * goal cannot absorb. The blocking part costs at most `leadMs` per period and is only allowed off the main
 * isolate's event loop (the worker owns nothing else).
 *
 * The timer runs only while the clock has members, so an idle origin (or a test) holds no timer.
 */
import { log as rootLog, type Logger } from "../../lib/log.ts";
import { registryRtpMetrics, type RtpMetricsSink } from "./sip_metrics.ts";

/** What the clock drives: one call's outbound RTP. */
export interface MediaClockMember {
  /** Send this tick's packet. `skipped` ticks before it were dropped after a stall (0 almost always). */
  sendTick(skipped: number): void;
  /** Prepare the next tick's packet, after every member has sent this tick's. */
  prepareNext(): void;
}

export interface MediaClockOptions {
  periodMs?: number;
  maxCatchUpPerPass?: number;
  maxBacklog?: number;
  /** Timer, then Atomics.wait, then a spin to the due instant (see above). Off the main isolate only. */
  precise?: boolean;
  /** Precise mode: the timer fires this long before the due instant. Default 5 ms. */
  leadMs?: number;
  /**
   * Precise mode: Atomics.wait ends this long before the due instant, the rest is a spin. Default 1 ms: a
   * sleeping thread sometimes wakes a millisecond or more late (an idle virtual CPU above all), a spinning one
   * does not; it costs that much CPU per period.
   */
  spinMs?: number;
  /** Runs after every pass (the RTP worker posts the pass's batch to main here). */
  afterPass?: () => void;
  metrics?: RtpMetricsSink;
  log?: Logger;
}

export class MediaClock {
  readonly periodMs: number;
  readonly #maxCatchUp: number;
  readonly #maxBacklog: number;
  readonly #log: Logger;
  readonly #members = new Set<MediaClockMember>();
  readonly #precise: boolean;
  readonly #leadMs: number;
  readonly #spinMs: number;
  readonly #afterPass?: () => void;
  readonly #metrics: RtpMetricsSink;
  readonly #sleeper = new Int32Array(new SharedArrayBuffer(4));
  #timer: ReturnType<typeof setTimeout> | undefined;
  #t0 = 0;
  #n = 0;
  #lastPass = 0;
  #lastSkipLog = -Infinity;
  #skipsSinceLog = 0;
  #closed = false;
  /** Ticks skipped since this clock was created (tests, benchmarks). */
  skipped = 0;

  constructor(o: MediaClockOptions = {}) {
    this.periodMs = o.periodMs ?? 20;
    this.#maxCatchUp = Math.max(1, o.maxCatchUpPerPass ?? 2);
    this.#maxBacklog = Math.max(this.#maxCatchUp, o.maxBacklog ?? 5);
    this.#log = (o.log ?? rootLog).child({ component: "rtp_clock" });
    this.#precise = o.precise ?? false;
    this.#leadMs = o.leadMs ?? 5;
    this.#spinMs = o.spinMs ?? 1;
    this.#afterPass = o.afterPass;
    this.#metrics = o.metrics ?? registryRtpMetrics;
  }

  get size(): number {
    return this.#members.size;
  }

  get running(): boolean {
    return this.#timer !== undefined;
  }

  /** Joins the next pass. Adding to a closed clock is a no-op: its member is never ticked. */
  add(m: MediaClockMember): void {
    if (this.#closed) return;
    this.#members.add(m);
    if (this.#timer === undefined) {
      this.#t0 = performance.now();
      this.#lastPass = this.#t0;
      this.#n = 0;
      this.#schedule();
    }
  }

  remove(m: MediaClockMember): void {
    this.#members.delete(m);
    if (this.#members.size === 0) this.#stop();
  }

  /** Stops the timer and forgets every member (they are the calls', not the clock's). Idempotent. */
  close(): void {
    this.#closed = true;
    this.#members.clear();
    this.#stop();
  }

  #stop(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #schedule(): void {
    const due = this.#t0 + (this.#n + 1) * this.periodMs;
    if (!this.#precise) {
      this.#timer = setTimeout(() => this.#pass(), Math.max(0, due - performance.now()));
      return;
    }
    this.#timer = setTimeout(() => {
      const rest = due - this.#spinMs - performance.now();
      if (rest > 0) Atomics.wait(this.#sleeper, 0, 0, rest);
      while (performance.now() < due) { /* the last fraction of a millisecond: a sleep would overshoot it */ }
      this.#pass();
    }, Math.max(0, due - this.#leadMs - performance.now()));
  }

  #pass(): void {
    this.#timer = undefined;
    const now = performance.now();
    let due = Math.floor((now - this.#t0) / this.periodMs) - this.#n;
    let skipped = 0;
    if (due > this.#maxBacklog) {
      skipped = due - 1;
      this.#n += skipped;
      due = 1;
      this.skipped += skipped;
      this.#metrics.count("skippedTicks", skipped);
      this.#noteSkip(skipped, now);
    }
    this.#metrics.observe("sendGap", (now - this.#lastPass) / 1000);
    this.#lastPass = now;
    const sends = Math.max(1, Math.min(due, this.#maxCatchUp));
    for (let i = 0; i < sends; i++) {
      this.#n++;
      for (const m of this.#members) {
        try {
          m.sendTick(i === 0 ? skipped : 0);
        } catch (err) {
          this.#log.error("rtp send tick failed", { err });
        }
      }
      for (const m of this.#members) {
        try {
          m.prepareNext();
        } catch (err) {
          this.#log.error("rtp packet preparation failed", { err });
        }
      }
    }
    this.#metrics.observe("passSeconds", (performance.now() - now) / 1000);
    try {
      this.#afterPass?.();
    } catch (err) {
      this.#log.error("rtp clock after-pass hook failed", { err });
    }
    if (this.#members.size > 0 && !this.#closed) this.#schedule();
  }

  /** A stall is worth a log line, but not one per pass while a machine is saturated. */
  #noteSkip(skipped: number, now: number): void {
    this.#skipsSinceLog += skipped;
    if (now - this.#lastSkipLog < 10_000) return;
    this.#log.warn("rtp clock stalled: ticks skipped", {
      skipped: this.#skipsSinceLog,
      calls: this.#members.size,
    });
    this.#lastSkipLog = now;
    this.#skipsSinceLog = 0;
  }
}
