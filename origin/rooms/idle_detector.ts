/**
 * Decides when a room's publisher is quiet. Media updates a timestamp (`noteFrame`: the frame's RMS above
 * `speechRms` counts as speech — cheap, and enough to tell talk from a muted mic, comfort noise or an idle
 * synthesized voice); a periodic check compares it with `idleAfterMs` and reports `idle` after that long
 * without speech. Speech coming back reports `active` on the frame that carries it (no wait: the start of what
 * is said must not be lost). No publisher → idle at once, until one joins AND speaks.
 *
 * Time comes from `now`, and it must be the timeline the media is heard on. A room passes its frame clock
 * (frame index × 10 ms), notes the frames its controller actually plays and checks on every tick
 * (`periodMs: 0`, no timer of its own): with wall-clock arrival times and a separate timer, an event loop
 * stalled longer than `idleAfterMs` fired the timer before the queued media was delivered, and listeners were
 * switched to the idle source in the middle of speech.
 */
import { rms } from "./frame_math.ts";

export interface IdleDetectorOptions {
  idleAfterMs: number;
  /** Timer period. Default 20 ms; 0: no timer, the owner calls `check()` (e.g. on every frame tick). */
  periodMs?: number;
  /** RMS (Int16 units) above which a frame counts as speech. Default 300 (≈ −41 dBFS). */
  speechRms?: number;
  /** Clock (ms, monotonic). Default performance.now. */
  now?: () => number;
  /** Called on every change; the first state is idle (no publisher). */
  onChange: (idle: boolean, atMs: number) => void;
}

export class IdleDetector {
  readonly idleAfterMs: number;
  readonly #speechRms: number;
  readonly #now: () => number;
  readonly #onChange: (idle: boolean, atMs: number) => void;
  readonly #timer: ReturnType<typeof setInterval> | undefined;
  #publisher = false;
  #lastSpeechAt = -Infinity;
  #idle = true;
  #idleSince: number;
  #idleMs = 0;
  #closed = false;

  constructor(opts: IdleDetectorOptions) {
    this.idleAfterMs = opts.idleAfterMs;
    this.#speechRms = opts.speechRms ?? 300;
    this.#now = opts.now ?? (() => performance.now());
    this.#onChange = opts.onChange;
    this.#idleSince = this.#now();
    const period = opts.periodMs ?? 20;
    if (period > 0) this.#timer = setInterval(() => this.check(), period);
  }

  get idle(): boolean {
    return this.#idle;
  }
  get lastSpeechAt(): number {
    return this.#lastSpeechAt;
  }
  /** Total time spent idle so far, ms (including the current idle stretch). */
  get idleMs(): number {
    return this.#idleMs + (this.#idle ? this.#now() - this.#idleSince : 0);
  }

  publisherJoined(): void {
    this.#publisher = true;
  }

  publisherLeft(): void {
    this.#publisher = false;
    this.#lastSpeechAt = -Infinity;
    this.#set(true);
  }

  /** A frame of publisher audio (mic or synthesized voice). Returns whether it counted as speech. */
  noteFrame(samples: Int16Array): boolean {
    if (this.#closed || !this.#publisher || rms(samples) <= this.#speechRms) return false;
    this.#lastSpeechAt = this.#now();
    if (this.#idle) this.#set(false);
    return true;
  }

  /** The periodic check (the timer's, or the owner's when `periodMs` is 0). */
  check(): void {
    if (this.#closed) return;
    const quiet = !this.#publisher || this.#now() - this.#lastSpeechAt >= this.idleAfterMs;
    if (quiet !== this.#idle) this.#set(quiet);
  }

  #set(idle: boolean): void {
    if (idle === this.#idle || this.#closed) return;
    const t = this.#now();
    if (this.#idle) this.#idleMs += t - this.#idleSince;
    else this.#idleSince = t;
    this.#idle = idle;
    this.#onChange(idle, t);
  }

  /** Stop the timer. Idempotent. */
  close(): void {
    if (this.#closed) return;
    if (this.#idle) this.#idleMs += this.#now() - this.#idleSince;
    this.#idle = false;
    this.#closed = true;
    clearInterval(this.#timer);
  }
}
