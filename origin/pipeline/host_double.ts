/**
 * A PipelineHost double for tests and benchmarks: records emitted events (assigning seq like the real Session),
 * and an OutboundAudio that plays queued 48 kHz PCM in real time on a 10 ms clock (like the RTCAudioSource
 * feeder), firing onPlayout notifications; and `feed` to push 48 kHz PCM into a pipeline as the WebRTC sink
 * does (10 ms frames).
 */
import type { ServerEvent, ServerEventBody } from "../../protocol/session_messages.ts";
import type { OutboundAudio, PipelineHost } from "./types.ts";
import type { StreamingPipeline } from "./speech_pipeline.ts";
import { ClosedError } from "../../lib/closed_error.ts";

type PlayoutListener = Parameters<OutboundAudio["onPlayout"]>[0];

export class FakeOutbound implements OutboundAudio {
  private queue: Array<{ id: string; pcm: Int16Array; offset: number }> = [];
  private ended = new Set<string>();
  private started = new Map<string, number>(); // id → samples played
  private listeners: PlayoutListener[] = [];
  private timer: ReturnType<typeof setInterval> | null = null;
  /** All PCM handed to the "source", in order. */
  readonly played: Int16Array[] = [];
  clears = 0;

  constructor(private readonly now: () => number, autoStart = true) {
    if (autoStart) this.start();
  }

  start(): void {
    if (!this.timer) this.timer = setInterval(() => this.tick(480), 10);
  }
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  enqueue(utteranceId: string, pcm48k: Int16Array): void {
    this.queue.push({ id: utteranceId, pcm: pcm48k, offset: 0 });
  }
  endUtterance(utteranceId: string): void {
    this.ended.add(utteranceId);
    this.maybeFinish(utteranceId);
  }
  clear(): Array<{ utteranceId: string; playedMs: number }> {
    this.clears++;
    const ids = new Set<string>(this.queue.map((q) => q.id));
    for (const [id] of this.started) if (!this.isFinished(id)) ids.add(id);
    const out = [...ids].map((id) => ({
      utteranceId: id,
      playedMs: ((this.started.get(id) ?? 0) * 1000) / 48000,
    }));
    for (const id of ids) {
      this.started.delete(id);
      this.ended.delete(id);
    }
    this.queue = [];
    return out;
  }
  queuedMs(): number {
    return (this.queue.reduce((s, q) => s + q.pcm.length - q.offset, 0) * 1000) / 48000;
  }
  onPlayout(listener: PlayoutListener): void {
    this.listeners.push(listener);
  }

  private isFinished(id: string): boolean {
    return !this.queue.some((q) => q.id === id) && this.ended.has(id);
  }

  private maybeFinish(id: string): void {
    if (this.started.has(id) && this.isFinished(id)) {
      const played = this.started.get(id)!;
      this.started.delete(id);
      this.ended.delete(id);
      this.fire({
        utteranceId: id,
        phase: "finished",
        sessionTimeMs: this.now(),
        playedMs: (played * 1000) / 48000,
      });
    }
  }

  /** Play `n` samples (one 10 ms frame). Public so tests can step the clock by hand. */
  tick(n: number): void {
    let need = n;
    const frame = new Int16Array(n);
    while (need > 0 && this.queue.length) {
      const q = this.queue[0];
      if (!this.started.has(q.id)) {
        this.started.set(q.id, 0);
        this.fire({ utteranceId: q.id, phase: "started", sessionTimeMs: this.now(), playedMs: 0 });
      }
      const take = Math.min(need, q.pcm.length - q.offset);
      frame.set(q.pcm.subarray(q.offset, q.offset + take), n - need);
      q.offset += take;
      need -= take;
      this.started.set(q.id, (this.started.get(q.id) ?? 0) + take);
      if (q.offset >= q.pcm.length) {
        this.queue.shift();
        this.maybeFinish(q.id);
      }
    }
    if (need < n) this.played.push(frame);
  }

  private fire(e: Parameters<PlayoutListener>[0]): void {
    for (const l of this.listeners) l(e);
  }
}

export class FakeHost implements PipelineHost {
  readonly events: ServerEvent[] = [];
  readonly outbound: FakeOutbound;
  private seq = 0;
  private readonly t0 = performance.now();
  closed = false;
  /** Called for each event as it is "sent". */
  onEvent?: (e: ServerEvent) => void;

  constructor(readonly sessionId = "sess-test", readonly tenantId = "tenant-test", autoPlay = true) {
    this.outbound = new FakeOutbound(() => this.now(), autoPlay);
  }
  emit(event: ServerEventBody): Promise<number> {
    if (this.closed) return Promise.reject(new ClosedError(`session ${this.sessionId}`));
    const e = { ...event, seq: ++this.seq } as ServerEvent;
    this.events.push(e);
    this.onEvent?.(e);
    return Promise.resolve(e.seq);
  }
  now(): number {
    return performance.now() - this.t0;
  }
  close(): void {
    this.closed = true;
    this.outbound.stop();
  }
}

/** Push 10 ms frames; `realtime` paces them on the wall clock like the WebRTC sink does. */
export async function feed(
  p: StreamingPipeline,
  host: FakeHost,
  pcm: Int16Array,
  realtime: boolean,
  onFrame?: (ms: number) => void,
  startMs?: number,
): Promise<number> {
  const t0 = performance.now();
  const base = startMs ?? host.now();
  for (let i = 0, k = 0; i < pcm.length; i += 480, k++) {
    if (realtime) {
      const due = t0 + k * 10;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    }
    const samples = new Int16Array(480);
    samples.set(pcm.subarray(i, Math.min(pcm.length, i + 480)));
    p.push({ samples, sampleRate: 48000, timestampMs: base + k * 10, receivedAt: performance.now() });
    onFrame?.(k * 10);
    if (!realtime && k % 50 === 0) await new Promise((r) => setTimeout(r, 0));
  }
  return base;
}

export function silence(ms: number): Int16Array {
  return new Int16Array(48 * ms);
}

export function concat(...parts: Int16Array[]): Int16Array {
  const out = new Int16Array(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
