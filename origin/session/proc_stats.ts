/**
 * Thread count, open fd count and RSS of a process from /proc (Linux). Used by leak tests and the churn bench.
 * Reading /proc/self/task in Deno 2.9 needs -A.
 */
export interface ProcStats {
  threads: number;
  fds: number;
  rssKiB: number;
}

/** CPU seconds (user + system) used so far by a process (all threads). */
export function cpuSeconds(pid: number | "self" = "self"): number {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // fields[11], fields[12] = utime, stime (fields 14 and 15 of the full line), in clock ticks (USER_HZ = 100)
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

export function procStats(pid: number | "self" = "self"): ProcStats {
  const base = `/proc/${pid}`;
  let threads = 0;
  for (const _ of Deno.readDirSync(`${base}/task`)) threads++;
  let fds = 0;
  for (const _ of Deno.readDirSync(`${base}/fd`)) fds++;
  const status = Deno.readTextFileSync(`${base}/status`);
  const m = status.match(/^VmRSS:\s+(\d+)\s+kB/m);
  return { threads, fds, rssKiB: m ? Number(m[1]) : 0 };
}

/** Child pids of a process (Linux 3.5+: /proc/<pid>/task/<tid>/children, summed over its threads). */
export function childPids(pid: number): number[] {
  const out: number[] = [];
  try {
    for (const t of Deno.readDirSync(`/proc/${pid}/task`)) {
      const list = Deno.readTextFileSync(`/proc/${pid}/task/${t.name}/children`).trim();
      if (list) out.push(...list.split(/\s+/).map(Number));
    }
  } catch { /* the process is gone */ }
  return out;
}

/** procStats summed over a process and all its descendants (a supervised origin), with the process count. */
export function procTreeStats(pid: number): ProcStats & { processes: number } {
  const total = { threads: 0, fds: 0, rssKiB: 0, processes: 0 };
  const visit = (p: number) => {
    try {
      const s = procStats(p);
      total.threads += s.threads;
      total.fds += s.fds;
      total.rssKiB += s.rssKiB;
      total.processes++;
    } catch { /* exited meanwhile */ }
    for (const c of childPids(p)) visit(c);
  };
  visit(pid);
  return total;
}
