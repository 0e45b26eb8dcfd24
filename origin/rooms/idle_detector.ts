/**
 * Decides when a room's publisher is quiet. Media updates a timestamp (`noteFrame`: the frame's RMS above
 * `speechRms` counts as speech — cheap, and enough to tell talk from a muted mic, comfort noise or an idle
 * synthesized voice); a periodic timer compares it with `idleAfterMs` and reports `idle` after that long
 * without speech, within one timer period. Speech coming back reports `active` on the frame that carries it
 * (no timer wait: the start of what is said must not be lost). No publisher → idle at once, until one
 * joins AND speaks.
 */
import { rms } from "./frame_math.ts";

export interface IdleDetectorOptions {
  idleAfterMs: number;
  /** Timer period. Default 20 ms. */
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
  readonly #timer: ReturnType<typeof setInterval>;
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
    this.#timer = setInterval(() => this.check(), opts.periodMs ?? 20);
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

  /** The timer's check (public for tests with an injected clock). */
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
