/**
 * Listener churn through the edge's WHEP routes: each cycle is a recvonly wrtc ListenerClient → POST
 * /v1/rooms/{id}/listeners (edge → origin) → connected, events channel open, audio flowing → DELETE its
 * Location → client closed. The origin process's threads, fds and RSS (from /proc/<pid>) are read with no
 * listener of this churn in flight, after `settleMs`, at each checkpoint. Used by tests/e2e/rooms_cases.ts (a
 * short run) and bench/rooms_churn.ts (300 cycles).
 */
import { ListenerClient } from "../../origin/rooms/test_listener.ts";
import { type ProcStats, procStats } from "../../origin/session/proc_stats.ts";
import { call } from "./stack_process.ts";

export interface RoomChurnOptions {
  url: string;
  key: string;
  roomId: string;
  originPid: number;
  cycles: number;
  concurrency: number;
  /** Cycles run before the baseline is taken (JIT, HTTP keep-alive connections, buffers). */
  warmup: number;
  /** Completed-cycle counts at which to measure (the baseline is always taken, the last count too). */
  checkpoints: number[];
  settleMs: number;
  /** Received frames to wait for per listener before leaving. */
  frames?: number;
  log?: (line: string) => void;
}

export interface RoomChurnResult {
  stats: Array<ProcStats & { at: number }>;
  /** POST → answer, ms. */
  setupMs: number[];
  failures: string[];
}

export async function runRoomChurn(o: RoomChurnOptions): Promise<RoomChurnResult> {
  const setupMs: number[] = [];
  const failures: string[] = [];
  const cycle = async (): Promise<void> => {
    const c = new ListenerClient({ keepFrames: false });
    let location: string | null = null;
    try {
      const offer = await c.offer();
      const t0 = performance.now();
      const res = await fetch(`${o.url}/v1/rooms/${o.roomId}/listeners`, {
        method: "POST",
        headers: { authorization: `Bearer ${o.key}`, "content-type": "application/sdp" },
        body: offer,
      });
      const text = await res.text();
      if (res.status !== 201) throw new Error(`POST listeners → ${res.status} ${text}`);
      setupMs.push(performance.now() - t0);
      location = res.headers.get("location");
      await c.accept(text);
      await c.waitFor(() => c.eventsOpen && c.receivedFrames >= (o.frames ?? 10), 20_000, "listener audio");
    } catch (err) {
      failures.push(String(err));
    } finally {
      if (location) {
        const r = await call(o.url, "DELETE", location, o.key);
        if (r.status !== 204) failures.push(`DELETE ${location} → ${r.status}`);
      }
      c.close();
    }
  };
  const runCycles = async (n: number) => {
    let started = 0;
    await Promise.all(Array.from({ length: Math.min(o.concurrency, n) }, async () => {
      while (started < n) {
        started++;
        await cycle();
      }
    }));
  };
  const measure = async (at: number) => {
    await new Promise((r) => setTimeout(r, o.settleMs));
    const s = { at, ...procStats(o.originPid) };
    o.log?.(
      `  ${at} listeners joined/left: threads ${s.threads}, fds ${s.fds}, RSS ${
        (s.rssKiB / 1024).toFixed(1)
      } MiB`,
    );
    return s;
  };
  await runCycles(o.warmup);
  const stats = [await measure(0)];
  let done = 0;
  for (
    const cp of [...new Set([...o.checkpoints, o.cycles])].filter((c) => c > 0 && c <= o.cycles).sort((
      a,
      b,
    ) => a - b)
  ) {
    await runCycles(cp - done);
    done = cp;
    stats.push(await measure(cp));
  }
  return { stats, setupMs, failures };
}
