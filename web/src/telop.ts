/// <reference lib="dom" />
/**
 * Telop: the subtitle of what the server is saying, with the current word highlighted and a mouth shape
 * driven by the phoneme visemes, scheduled against the audio we hear.
 *
 * Clock alignment: events carry session time (ms since the session became active, on the server's clock).
 * Each event is sent no earlier than the session time it names (state `active` at 0, a telop at its playout
 * start, a transcript after its end), so `receivedAt - sessionTime` is an upper bound of the local time of
 * session zero; the smallest such bound seen is the estimate. Playout is then shifted by the receiver's jitter
 * buffer delay (from getStats), which is what separates "the server sent the sample" from "we hear it".
 */
import type { TelopEvent, UtteranceEvent, Viseme } from "../../protocol/session_messages.ts";
import { clear, h } from "./dom.ts";

export class SessionClock {
  #zero = Infinity;
  /** Receiver playout delay in ms (jitter buffer + a small output allowance). */
  playoutDelayMs = 60;

  observe(sessionMs: number, receivedAt = performance.now()): void {
    this.#zero = Math.min(this.#zero, receivedAt - sessionMs);
  }

  /** Local performance.now() time at which session time `ms` is heard. */
  local(ms: number): number {
    return (Number.isFinite(this.#zero) ? this.#zero : performance.now() - ms) + ms + this.playoutDelayMs;
  }

  reset(): void {
    this.#zero = Infinity;
  }
}

interface Scheduled {
  event: TelopEvent;
  startAt: number;
  receivedAt: number;
  /** The voice was already audible when this telop arrived (no onset to wait for). */
  busy: boolean;
  wordEls: HTMLElement[];
  cut?: number;
}

/** What the page hears of the returned voice (see LiveView): onsets after quiet, and whether it is loud now. */
export interface VoiceMonitor {
  onsets: number[];
  loud(): boolean;
}

/** How far an audible onset may be from the clock's estimate and still be taken as this telop's start. */
const SNAP_WINDOW_MS = 1200;
/** Without an onset, wait this long past the estimate before showing (the estimate may run early). */
const ONSET_WAIT_MS = 1000;

export class TelopView {
  #current: Scheduled | null = null;
  #queue: Scheduled[] = [];
  #raf = 0;
  /** For tests and the debug panel: how many telops were shown and how many words were highlighted. */
  shown = 0;
  highlighted = 0;
  /** Local time at which each telop started showing (its first word due), for sync checks. */
  readonly starts: number[] = [];

  #usedOnset = -Infinity;

  constructor(
    private readonly textEl: HTMLElement,
    private readonly mouthEl: HTMLElement,
    private readonly clock: SessionClock,
    private readonly voice?: VoiceMonitor,
  ) {}

  add(e: TelopEvent): void {
    const startAt = this.clock.local(e.playout_start_ms);
    // A replayed telop that has already finished playing is not shown again.
    if (startAt + e.duration_ms < performance.now()) return;
    const wordEls: HTMLElement[] = [];
    const receivedAt = performance.now();
    const s: Scheduled = { event: e, startAt, receivedAt, busy: this.voice?.loud() ?? true, wordEls };
    this.#queue.push(s);
    this.#queue.sort((a, b) => a.startAt - b.startAt);
    this.#tick();
  }

  utterance(e: UtteranceEvent): void {
    const s = this.#current?.event.utterance_id === e.utterance_id
      ? this.#current
      : this.#queue.find((q) => q.event.utterance_id === e.utterance_id);
    if (!s) return;
    if (e.phase === "interrupted") {
      s.cut = e.played_ms;
      this.textEl.dataset.interrupted = "true";
    }
  }

  #render(s: Scheduled): void {
    clear(this.textEl);
    delete this.textEl.dataset.interrupted;
    const e = s.event;
    let pos = 0;
    for (const w of e.words) {
      if (w.char_start > pos) this.textEl.append(e.text.slice(pos, w.char_start));
      const el = h("span", { class: "word" }, e.text.slice(w.char_start, w.char_end) || w.text);
      s.wordEls.push(el);
      this.textEl.append(el);
      pos = Math.max(pos, w.char_end);
    }
    if (pos < e.text.length) this.textEl.append(e.text.slice(pos));
    if (!e.words.length) this.textEl.append(e.text);
    this.textEl.dataset.utterance = e.utterance_id;
    this.shown++;
    this.starts.push(s.startAt);
    this.textEl.dataset.shown = String(this.shown);
  }

  #tick = (): void => {
    cancelAnimationFrame(this.#raf);
    const now = performance.now();
    while (this.#queue.length && this.#due(this.#queue[0], now)) {
      this.#current = this.#queue.shift()!;
      this.#render(this.#current);
    }
    const s = this.#current;
    let viseme: Viseme = "rest";
    if (s) {
      const t = now - s.startAt;
      const end = s.cut ?? s.event.duration_ms;
      if (t > end + 600) {
        // Leave the last line up, but no word is current any more.
        for (const el of s.wordEls) el.classList.remove("current");
        this.#current = null;
      } else {
        s.event.words.forEach((w, i) => {
          const on = t >= w.start_ms && t < w.start_ms + w.duration_ms && t < end;
          const el = s.wordEls[i];
          if (!el) return;
          if (on && !el.classList.contains("current")) {
            this.highlighted++;
            this.textEl.dataset.highlighted = String(this.highlighted);
          }
          el.classList.toggle("current", on);
          el.classList.toggle("spoken", t >= w.start_ms + w.duration_ms);
        });
        const p = s.event.phonemes.find((p) => t >= p.start_ms && t < p.start_ms + p.duration_ms);
        if (p && t < end) viseme = p.viseme;
        else if (t >= 0 && t < end) viseme = "closed";
      }
    }
    this.mouthEl.dataset.viseme = viseme;
    if (this.#current || this.#queue.length) this.#raf = requestAnimationFrame(this.#tick);
  };

  /**
   * Is this telop's audio playing yet? The session clock gives an estimate; what we actually hear decides
   * when it can: the first onset of the returned voice near the estimate (not used by an earlier telop)
   * becomes the start. Without one (the voice was already playing, or too quiet to detect), the estimate
   * holds, a little later when silence was expected.
   */
  #due(s: Scheduled, now: number): boolean {
    if (this.voice) {
      const onset = this.voice.onsets.findLast((o) =>
        o > this.#usedOnset && o >= s.receivedAt - 300 && Math.abs(o - s.startAt) <= SNAP_WINDOW_MS
      );
      if (onset !== undefined) {
        this.#usedOnset = onset;
        s.startAt = onset;
        return true;
      }
      if (!s.busy) {
        if (now < s.startAt + ONSET_WAIT_MS) return false;
        s.startAt = now; // nothing heard yet: take "now" as the start rather than skip the first words
        return true;
      }
    }
    return now >= s.startAt;
  }

  reset(): void {
    cancelAnimationFrame(this.#raf);
    this.#usedOnset = -Infinity;
    this.#queue = [];
    this.#current = null;
    this.starts.length = 0;
    clear(this.textEl);
    this.mouthEl.dataset.viseme = "rest";
  }
}
