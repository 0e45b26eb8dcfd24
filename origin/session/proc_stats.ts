/**
 * Thread count, open fd count and RSS of a process from /proc (Linux). Used by leak tests and the churn bench.
 * Reading /proc/self/task in Deno 2.9 needs -A.
 */
export interface ProcStats {
  threads: number;
  fds: number;
  rssKiB: number;
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
