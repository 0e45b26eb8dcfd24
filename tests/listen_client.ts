/**
 * A `/v1/listen` client for tests and benchmarks: Deno's WebSocket, collecting events and binary frames, with
 * a real-time WAV streamer (frames paced by the wall clock, as a microphone would send them).
 */
import type { ServerEvent, TranscriptEvent } from "../protocol/session_messages.ts";

export interface ListenConnection {
  ws: WebSocket;
  events: ServerEvent[];
  /** performance.now() when each event arrived (same index as events). */
  arrivedAt: number[];
  binaryBytes: number;
  opened: Promise<void>;
  closed: Promise<{ code: number; reason: string }>;
  waitFor(pred: (e: ServerEvent) => boolean, timeoutMs: number, what: string): Promise<ServerEvent>;
}

export function listen(
  url: string,
  opts: { protocols?: string[]; headers?: Record<string, string> } = {},
): ListenConnection {
  const init = opts.headers ? { headers: opts.headers, protocols: opts.protocols } : undefined;
  const ws = init ? new WebSocket(url, init as unknown as string[]) : new WebSocket(url, opts.protocols);
  ws.binaryType = "arraybuffer";
  const events: ServerEvent[] = [];
  const arrivedAt: number[] = [];
  const waiters = new Set<() => void>();
  const conn: ListenConnection = {
    ws,
    events,
    arrivedAt,
    binaryBytes: 0,
    opened: new Promise((resolve) => ws.addEventListener("open", () => resolve())),
    closed: new Promise((resolve) =>
      ws.addEventListener("close", (e) => {
        resolve({ code: e.code, reason: e.reason });
        for (const w of waiters) w();
      })
    ),
    waitFor(pred, timeoutMs, what) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const hit = events.find(pred);
          if (hit) {
            waiters.delete(check);
            clearTimeout(timer);
            resolve(hit);
          } else if (ws.readyState === WebSocket.CLOSED) {
            waiters.delete(check);
            clearTimeout(timer);
            reject(new Error(`${what}: stream closed first; events: ${JSON.stringify(events).slice(-800)}`));
          }
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(
            new Error(`${what}: not within ${timeoutMs} ms; events: ${JSON.stringify(events).slice(-800)}`),
          );
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
  };
  ws.onmessage = (e) => {
    if (typeof e.data === "string") {
      events.push(JSON.parse(e.data));
      arrivedAt.push(performance.now());
      for (const w of [...waiters]) w();
    } else conn.binaryBytes += (e.data as ArrayBuffer).byteLength;
  };
  ws.onerror = () => {};
  return conn;
}

/** Send the WAV's 44-byte header, then its PCM in `frameMs` frames paced in real time (× `speed`). */
export async function streamWav(
  ws: WebSocket,
  wav: Uint8Array,
  opts: { frameMs?: number; speed?: number; headerFirst?: boolean; stopAt?: () => boolean } = {},
): Promise<void> {
  const dv = new DataView(wav.buffer, wav.byteOffset, wav.byteLength);
  const rate = dv.getUint32(24, true);
  const frameMs = opts.frameMs ?? 20;
  const bytesPerFrame = Math.round(rate * frameMs / 1000) * 2;
  if (opts.headerFirst ?? true) ws.send(wav.subarray(0, 44));
  const t0 = performance.now();
  let k = 0;
  for (let off = 44; off < wav.length; off += bytesPerFrame, k++) {
    if (ws.readyState !== WebSocket.OPEN || opts.stopAt?.()) return;
    ws.send(wav.slice(off, Math.min(wav.length, off + bytesPerFrame)));
    const due = t0 + (k + 1) * frameMs / (opts.speed ?? 1);
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  }
}

/** `ms` of silence as PCM16 frames at `rate`, paced in real time. */
export async function streamSilence(ws: WebSocket, rate: number, ms: number, frameMs = 20): Promise<void> {
  const frame = new Uint8Array(Math.round(rate * frameMs / 1000) * 2);
  const t0 = performance.now();
  for (let k = 0; k * frameMs < ms; k++) {
    if (ws.readyState !== WebSocket.OPEN) return;
    ws.send(frame);
    const wait = t0 + (k + 1) * frameMs - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  }
}

/** Some segment has a partial before its confirmed result. */
export function hasPartialBeforeConfirmed(events: ServerEvent[]): boolean {
  const ts = events.filter((e): e is TranscriptEvent => e.type === "transcript");
  return ts.some((c) =>
    c.status === "confirmed" &&
    ts.some((p) => p.status === "partial" && p.segment_id === c.segment_id && p.seq < c.seq)
  );
}
