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
  wordEls: HTMLElement[];
  cut?: number;
}

export class TelopView {
  #current: Scheduled | null = null;
  #queue: Scheduled[] = [];
  #raf = 0;
  /** For tests and the debug panel: how many telops were shown and how many words were highlighted. */
  shown = 0;
  highlighted = 0;

  constructor(
    private readonly textEl: HTMLElement,
    private readonly mouthEl: HTMLElement,
    private readonly clock: SessionClock,
  ) {}

  add(e: TelopEvent): void {
    const startAt = this.clock.local(e.playout_start_ms);
    // A replayed telop that has already finished playing is not shown again.
    if (startAt + e.duration_ms < performance.now()) return;
    const wordEls: HTMLElement[] = [];
    const s: Scheduled = { event: e, startAt, wordEls };
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
    this.textEl.dataset.shown = String(this.shown);
  }

  #tick = (): void => {
    cancelAnimationFrame(this.#raf);
    const now = performance.now();
    while (this.#queue.length && this.#queue[0].startAt <= now) {
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

  reset(): void {
    cancelAnimationFrame(this.#raf);
    this.#queue = [];
    this.#current = null;
    clear(this.textEl);
    this.mouthEl.dataset.viseme = "rest";
  }
}
