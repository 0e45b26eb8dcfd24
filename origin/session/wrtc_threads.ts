/**
 * libwebrtc starts three threads per audio send stream — `rtp_send_controller`, `TaskQueuePacedSender` and
 * `AudioEncoder` — as high-priority task queues, which on Linux means SCHED_FIFO real-time threads when the
 * process may set that (root, CAP_SYS_NICE, or an RLIMIT_RTPRIO). The JS thread that produces every 10 ms
 * frame, and wrtc's signaling thread that every RTCPeerConnection call waits on, are normal threads. With many
 * send streams in one process (a room's listeners) the real-time threads always win the CPU: the room tick
 * and the publisher's pacing stall for seconds and new listeners' negotiation never completes, although the
 * process uses well under its cores. Demoting those threads to SCHED_OTHER lets the kernel share the CPU
 * fairly between the clock that feeds the encoders and the encoders (see docs/benchmarks.md, rooms).
 *
 * `demoteSendStreamThreads()` scans /proc/self/task for real-time threads of those names and sets them to
 * SCHED_OTHER (sched_setscheduler through FFI). Threads already seen are skipped. Without FFI permission or
 * outside Linux it does nothing and says so once. Room listeners and sessions call it once their peer is
 * answered and again when it connects (the threads appear during negotiation); the test client does too, so
 * that on one machine the clients' threads do not starve the server under test.
 */
import { log } from "../../lib/log.ts";
import { registry } from "../../lib/metrics.ts";

const demotedTotal = registry.counter(
  "parley_wrtc_threads_demoted_total",
  "libwebrtc real-time send-stream threads set to SCHED_OTHER",
);

/** Thread names (comm, 15 characters at most) of libwebrtc's per-send-stream task queues. */
const SEND_STREAM_THREADS = new Set(["rtp_send_contro", "TaskQueuePacedS", "AudioEncoder"]);
const SCHED_OTHER = 0;

type Libc = { symbols: { sched_setscheduler: (tid: number, policy: number, param: Uint8Array) => number } };
let libc: Libc | null | undefined;
const seen = new Set<string>();

function openLibc(): Libc | null {
  if (libc !== undefined) return libc;
  try {
    libc = Deno.dlopen("libc.so.6", {
      sched_setscheduler: { parameters: ["i32", "i32", "buffer"], result: "i32" },
    }) as unknown as Libc;
  } catch (err) {
    log.warn("cannot demote wrtc real-time threads (no FFI or no libc)", { err: String(err) });
    libc = null;
  }
  return libc;
}

/** Demote new real-time send-stream threads of this process; returns how many were changed. */
export function demoteSendStreamThreads(): number {
  if (Deno.build.os !== "linux") return 0;
  const c = openLibc();
  if (!c) return 0;
  const param = new Uint8Array(4); // struct sched_param { int sched_priority = 0 }
  let changed = 0;
  const live = new Set<string>();
  let tasks: Iterable<Deno.DirEntry>;
  try {
    tasks = Deno.readDirSync("/proc/self/task");
  } catch {
    return 0;
  }
  for (const t of tasks) {
    live.add(t.name);
    if (seen.has(t.name)) continue;
    let stat: string, comm: string;
    try {
      comm = Deno.readTextFileSync(`/proc/self/task/${t.name}/comm`).trim();
      stat = Deno.readTextFileSync(`/proc/self/task/${t.name}/stat`);
    } catch {
      continue; // thread ended
    }
    // Fields after "(comm) ": index 38 is the scheduling policy (field 41 of the full line).
    const policy = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[38]);
    if (!SEND_STREAM_THREADS.has(comm)) {
      seen.add(t.name);
      continue;
    }
    // A send-stream thread still SCHED_OTHER may not have been made real-time yet: look again next time.
    if (policy === SCHED_OTHER) continue;
    if (c.symbols.sched_setscheduler(Number(t.name), SCHED_OTHER, param) === 0) {
      changed++;
      seen.add(t.name);
    }
  }
  for (const tid of seen) if (!live.has(tid)) seen.delete(tid);
  if (changed) demotedTotal.inc({}, changed);
  return changed;
}

/** Scheduling policy of each thread of this process by name (0 = SCHED_OTHER, 1 = FIFO, 2 = RR); tests. */
export function threadPolicies(): Array<{ comm: string; policy: number }> {
  const out: Array<{ comm: string; policy: number }> = [];
  for (const t of Deno.readDirSync("/proc/self/task")) {
    try {
      const comm = Deno.readTextFileSync(`/proc/self/task/${t.name}/comm`).trim();
      const stat = Deno.readTextFileSync(`/proc/self/task/${t.name}/stat`);
      out.push({ comm, policy: Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[38]) });
    } catch { /* thread ended */ }
  }
  return out;
}
