/**
 * Real-time scheduling (or a higher priority) for the calling thread (the SIP RTP worker's; a room forward
 * worker's asks only for the nice boost), as media servers do for their timing threads: under SCHED_FIFO a
 * thread that wakes up runs at once instead of waiting behind every other runnable thread of the machine
 * (speech inference, the main isolate, other processes), and is not preempted in the middle of a send pass. The RTP worker sleeps most of each 20 ms period, so it cannot starve anything (and
 * Linux caps real-time threads at 95 % of a CPU by default). Needs CAP_SYS_NICE or an RLIMIT_RTPRIO and
 * --allow-ffi; without them it falls back to a lower nice value than the main thread's, and without that too it
 * changes nothing. Linux only, best effort, never throws.
 */
import os from "node:os";

const SCHED_FIFO = 1;

export interface ThreadPriorityResult {
  policy: "fifo" | "nice" | "unchanged";
  detail: string;
}

/** `fifoPriority` 1–99 (0: do not try real-time); `niceBoost`: nice steps below the main thread otherwise. */
export function raiseThreadPriority(fifoPriority: number, niceBoost = 5): ThreadPriorityResult {
  let why = "real-time disabled";
  if (fifoPriority > 0 && Deno.build.os === "linux") {
    try {
      const libc = Deno.dlopen(
        "libc.so.6",
        {
          sched_setscheduler: { parameters: ["i32", "i32", "buffer"], result: "i32" },
        } as const,
      );
      try {
        const param = new Int32Array([Math.min(99, Math.max(1, Math.round(fifoPriority)))]);
        // pid 0: the calling thread (Linux schedules threads, not processes).
        const rc = libc.symbols.sched_setscheduler(0, SCHED_FIFO, new Uint8Array(param.buffer));
        if (rc === 0) return { policy: "fifo", detail: `SCHED_FIFO ${param[0]}` };
        why = "sched_setscheduler refused (no CAP_SYS_NICE or RLIMIT_RTPRIO)";
      } finally {
        libc.close();
      }
    } catch (e) {
      why = `no FFI: ${(e as Error).message}`;
    }
  }
  try {
    const tid = Number(Deno.readLinkSync("/proc/thread-self").split("/").pop());
    if (Number.isInteger(tid) && niceBoost > 0) {
      const target = Math.max(-20, os.getPriority(Deno.pid) - niceBoost);
      os.setPriority(tid, target);
      return { policy: "nice", detail: `nice ${os.getPriority(tid)} (${why})` };
    }
  } catch (e) {
    why += `; renice failed: ${(e as Error).message}`;
  }
  return { policy: "unchanged", detail: why };
}
