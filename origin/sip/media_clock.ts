/**
 * The origin's one RTP send clock: a single timer ticks every 20 ms and, in one pass, sends every call's due
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
 * The timer runs only while the clock has members, so an idle origin (or a test) holds no timer.
 */
import { log as rootLog, type Logger } from "../../lib/log.ts";
import { registry } from "../../lib/metrics.ts";

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
  log?: Logger;
}

const passGap = registry.histogram(
  "parley_rtp_send_gap_seconds",
  "Gap between consecutive passes of the shared RTP media clock (each pass sends every call's due packet)",
  [0.005, 0.01, 0.015, 0.019, 0.021, 0.025, 0.03, 0.04, 0.06, 0.1, 0.25],
);
const passSeconds = registry.histogram(
  "parley_rtp_clock_pass_seconds",
  "Time one media clock pass took: every call's send, then every call's next-packet preparation",
  [0.0001, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05],
);
const skippedTicks = registry.counter(
  "parley_rtp_clock_skipped_ticks_total",
  "20 ms RTP ticks the media clock skipped after a stall longer than its backlog",
);

export class MediaClock {
  readonly periodMs: number;
  readonly #maxCatchUp: number;
  readonly #maxBacklog: number;
  readonly #log: Logger;
  readonly #members = new Set<MediaClockMember>();
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
    this.#timer = setTimeout(() => this.#pass(), Math.max(0, due - performance.now()));
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
      skippedTicks.inc(undefined, skipped);
      this.#noteSkip(skipped, now);
    }
    passGap.observe((now - this.#lastPass) / 1000);
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
    passSeconds.observe((performance.now() - now) / 1000);
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

/** The origin's shared clock. */
export const mediaClock: MediaClock = new MediaClock();
