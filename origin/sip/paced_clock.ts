/**
 * A drift-free periodic clock: tick n is due at start + n·period, and each timeout is computed from that
 * schedule, so timer lateness never accumulates. When the loop falls more than `maxCatchUp` periods behind,
 * the schedule jumps forward instead of bursting (a burst of RTP would overflow the phone's jitter buffer).
 */
export class PacedClock {
  #timer?: ReturnType<typeof setTimeout>;
  #n = 0;
  #start = 0;
  #closed = false;
  /** Gaps between consecutive ticks in ms, for pacing statistics. */
  readonly gaps: number[] = [];
  #lastTick = 0;

  constructor(
    private readonly periodMs: number,
    private readonly onTick: (n: number) => void,
    private readonly maxCatchUp = 3,
    private readonly recordGaps = 0,
  ) {}

  start(): void {
    if (this.#closed || this.#timer !== undefined) return;
    this.#start = performance.now();
    this.#lastTick = this.#start;
    this.#n = 0;
    this.#schedule();
  }

  #schedule(): void {
    if (this.#closed) return;
    const due = this.#start + (this.#n + 1) * this.periodMs;
    this.#timer = setTimeout(() => this.#fire(), Math.max(0, due - performance.now()));
  }

  #fire(): void {
    if (this.#closed) return;
    const now = performance.now();
    let behind = Math.floor((now - this.#start) / this.periodMs) - this.#n;
    if (behind > this.maxCatchUp) {
      this.#n += behind - 1;
      behind = 1;
    }
    for (let i = 0; i < behind && !this.#closed; i++) {
      this.#n++;
      if (this.recordGaps > 0) {
        this.gaps.push(now - this.#lastTick);
        if (this.gaps.length > this.recordGaps) this.gaps.shift();
        this.#lastTick = now;
      }
      this.onTick(this.#n);
    }
    this.#schedule();
  }

  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
  }
}
