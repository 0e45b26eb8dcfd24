/**
 * Built-in `echo` mode: every inbound frame is played back to the client about `delayMs` (default 200 ms)
 * later, through the same paced OutboundAudio the speech pipeline uses. It proves both media directions and
 * the pipeline seam without any model. `say` plays a short chime per word and reports `utterance`
 * started/finished events (so the playout path and event ordering are exercised too).
 */
import type { SessionOptions } from "../../protocol/session_messages.ts";
import type { InboundFrame, PipelineHost, SayOptions, SpeechPipeline } from "../pipeline/types.ts";
import { ClosedError } from "../../lib/closed_error.ts";

export interface EchoOptions {
  delayMs?: number;
  /** Drop inbound frames while this much audio is already queued (keeps latency bounded if clocks drift). */
  maxQueuedMs?: number;
}

export class EchoPipeline implements SpeechPipeline {
  #state: "running" | "closed" = "running";
  readonly #delayMs: number;
  readonly #maxQueuedMs: number;
  readonly #pending: Array<{ pcm: Int16Array; due: number }> = [];
  #muted = false;
  #options: Partial<SessionOptions> = {};
  #utterances = 0;
  /** Frames played back / dropped (tests). */
  echoed = 0;
  dropped = 0;

  constructor(private readonly host: PipelineHost, opts: EchoOptions = {}) {
    this.#delayMs = opts.delayMs ?? 200;
    this.#maxQueuedMs = opts.maxQueuedMs ?? 120;
    host.outbound.onPlayout((e) => {
      if (this.#state === "closed" || e.utteranceId === "echo") return;
      this.host.emit({
        type: "utterance",
        utterance_id: e.utteranceId,
        phase: e.phase,
        played_ms: e.playedMs,
      })
        .catch(() => {/* session closing */});
    });
  }

  get state(): "running" | "closed" {
    return this.#state;
  }

  get muted(): boolean {
    return this.#muted;
  }

  get options(): Partial<SessionOptions> {
    return this.#options;
  }

  push(frame: InboundFrame): void {
    if (this.#state === "closed") return;
    this.#pending.push({ pcm: frame.samples, due: frame.receivedAt + this.#delayMs });
    const now = performance.now();
    while (this.#pending.length > 0 && this.#pending[0].due <= now) {
      const { pcm } = this.#pending.shift()!;
      if (this.host.outbound.queuedMs() >= this.#maxQueuedMs) {
        this.dropped++;
        continue;
      }
      this.host.outbound.enqueue("echo", pcm);
      this.echoed++;
    }
  }

  say(text: string, _opts?: SayOptions): Promise<void> {
    if (this.#state === "closed") return Promise.reject(new ClosedError("echo pipeline"));
    const id = `say-${++this.#utterances}`;
    const words = text.trim().split(/\s+/).filter(Boolean).length || 1;
    const rate = 48_000;
    const wordSamples = Math.round(rate * 0.12), gapSamples = Math.round(rate * 0.04);
    const pcm = new Int16Array(Math.min(words, 40) * (wordSamples + gapSamples));
    for (let w = 0; w < Math.min(words, 40); w++) {
      const off = w * (wordSamples + gapSamples);
      const f = w % 2 ? 660 : 880;
      for (let i = 0; i < wordSamples; i++) {
        const env = Math.min(1, i / 240, (wordSamples - i) / 240);
        pcm[off + i] = Math.round(6000 * env * Math.sin(2 * Math.PI * f * i / rate));
      }
    }
    this.host.outbound.enqueue(id, pcm);
    this.host.outbound.endUtterance(id);
    return Promise.resolve();
  }

  setMuted(muted: boolean): void {
    this.#muted = muted;
  }

  setOptions(options: Partial<SessionOptions>): void {
    this.#options = { ...this.#options, ...options };
  }

  close(): Promise<void> {
    this.#state = "closed";
    this.#pending.length = 0;
    return Promise.resolve();
  }
}
