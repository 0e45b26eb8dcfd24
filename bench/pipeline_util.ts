/** Shared helpers for the pipeline benchmarks. */

/** Process CPU seconds (all threads, workers included) from /proc/self/stat. */
export function cpuSeconds(): number {
  const stat = Deno.readTextFileSync("/proc/self/stat");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const ticks = Number(f[11]) + Number(f[12]); // utime + stime (fields 14, 15)
  return ticks / 100;
}

/** CPU seconds of the main thread only (the media event loop): /proc/self/task/<pid>/stat. */
export function mainThreadCpuSeconds(): number {
  const stat = Deno.readTextFileSync(`/proc/self/task/${Deno.pid}/stat`);
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(f[11]) + Number(f[12])) / 100;
}

const SUBJECTS = [
  "The cat",
  "My neighbour",
  "A small robot",
  "The old captain",
  "Every student",
  "Our new manager",
  "The tired pilot",
  "A quiet child",
];
const VERBS = ["found", "painted", "repaired", "carried", "borrowed", "described", "ordered", "noticed"];
const OBJECTS = [
  "a green umbrella",
  "the broken window",
  "seven blue boxes",
  "a letter from Paris",
  "the morning train",
  "a cup of tea",
  "the wooden bridge",
  "an empty bottle",
];
const TAILS = [
  "yesterday.",
  "before lunch.",
  "near the river.",
  "in the garden.",
  "after the meeting.",
  "on Monday morning.",
  "without a word.",
  "at the station.",
];

/** Deterministic, varied English sentences (1.5–3 s each when spoken by espeak). */
export function pipelineSentences(n: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    out.push(
      `${SUBJECTS[i % 8]} ${VERBS[(i * 3 + 1) % 8]} ${OBJECTS[(i * 5 + 2) % 8]} ${TAILS[(i * 7 + 3) % 8]}`,
    );
  }
  return out;
}

export function percentile(xs: number[], p: number): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}

export function table(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (r: string[]) => "| " + r.map((c, i) => (c ?? "").padEnd(widths[i])).join(" | ") + " |";
  return [line(head), "|" + widths.map((w) => "-".repeat(w + 2)).join("|") + "|", ...rows.map(line)].join(
    "\n",
  );
}
