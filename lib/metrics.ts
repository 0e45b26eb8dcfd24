/**
 * A small Prometheus registry (text exposition format 0.0.4). Counters, gauges and histograms with labels.
 * Each process (edge, origin, or both in `start`) owns one `registry`; stages register their metrics at module
 * load with `registry.counter(...)` etc., which returns the existing metric when the name is already known, so
 * modules can be imported from several places without double registration.
 *
 * Worker isolates have registries of their own; `snapshot()` gives a registry's values as plain data, and the
 * process registry shows a worker's last snapshot under a `worker` label (`setRemote`), so metrics of stages
 * that run in workers (recognizers, synthesis, noise suppression) reach `/metrics`.
 */
type Labels = Record<string, string | number>;

function labelKey(labels: Labels | undefined): string {
  if (!labels) return "";
  const keys = Object.keys(labels).sort();
  return keys.map((k) =>
    `${k}="${String(labels[k]).replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n")}"`
  )
    .join(",");
}

/** One metric's values as plain (structured-clone) data. Series keys are rendered label sets. */
export interface MetricFamily {
  name: string;
  help: string;
  type: "counter" | "gauge" | "histogram";
  buckets?: number[];
  series: Array<{ key: string; value?: number; counts?: number[]; sum?: number; count?: number }>;
}

interface Metric {
  readonly name: string;
  readonly help: string;
  render(): string;
  snapshot(): MetricFamily;
}

/** Prepends `label="value"` to a rendered label set. */
function withLabel(key: string, label: string): string {
  return key ? `${label},${key}` : label;
}

function renderFamily(f: MetricFamily): string {
  const lines = [`# HELP ${f.name} ${f.help}`, `# TYPE ${f.name} ${f.type}`];
  if (f.type === "histogram") {
    for (const s of f.series) {
      const sep = s.key ? "," : "";
      f.buckets!.forEach((b, i) => lines.push(`${f.name}_bucket{${s.key}${sep}le="${b}"} ${s.counts![i]}`));
      lines.push(`${f.name}_bucket{${s.key}${sep}le="+Inf"} ${s.count}`);
      lines.push(s.key ? `${f.name}_sum{${s.key}} ${s.sum}` : `${f.name}_sum ${s.sum}`);
      lines.push(s.key ? `${f.name}_count{${s.key}} ${s.count}` : `${f.name}_count ${s.count}`);
    }
  } else {
    if (f.series.length === 0) lines.push(`${f.name} 0`);
    for (const s of f.series) lines.push(s.key ? `${f.name}{${s.key}} ${s.value}` : `${f.name} ${s.value}`);
  }
  return lines.join("\n");
}

export class Counter implements Metric {
  private readonly values = new Map<string, number>();
  constructor(readonly name: string, readonly help: string) {}
  inc(labels?: Labels, by = 1): void {
    const k = labelKey(labels);
    this.values.set(k, (this.values.get(k) ?? 0) + by);
  }
  /** One label set, its key rendered once: for counting on a per-packet path without a key per call. */
  with(labels: Labels): { inc(by?: number): void } {
    const k = labelKey(labels);
    return { inc: (by = 1) => void this.values.set(k, (this.values.get(k) ?? 0) + by) };
  }
  get(labels?: Labels): number {
    return this.values.get(labelKey(labels)) ?? 0;
  }
  snapshot(): MetricFamily {
    const series = [...this.values].map(([key, value]) => ({ key, value }));
    return { name: this.name, help: this.help, type: "counter", series };
  }
  render(): string {
    return renderFamily(this.snapshot());
  }
}

export class Gauge implements Metric {
  private readonly values = new Map<string, number>();
  private collector?: () => number | Array<[Labels, number]>;
  constructor(readonly name: string, readonly help: string) {}
  set(value: number, labels?: Labels): void {
    this.values.set(labelKey(labels), value);
  }
  inc(labels?: Labels, by = 1): void {
    const k = labelKey(labels);
    this.values.set(k, (this.values.get(k) ?? 0) + by);
  }
  dec(labels?: Labels, by = 1): void {
    this.inc(labels, -by);
  }
  get(labels?: Labels): number {
    return this.values.get(labelKey(labels)) ?? 0;
  }
  /** Sample the value at scrape time (queue depth, thread count...). */
  collect(fn: () => number | Array<[Labels, number]>): this {
    this.collector = fn;
    return this;
  }
  snapshot(): MetricFamily {
    if (this.collector) {
      const v = this.collector();
      if (typeof v === "number") this.values.set("", v);
      else for (const [l, n] of v) this.values.set(labelKey(l), n);
    }
    const series = [...this.values].map(([key, value]) => ({ key, value }));
    return { name: this.name, help: this.help, type: "gauge", series };
  }
  render(): string {
    return renderFamily(this.snapshot());
  }
}

export const DEFAULT_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export class Histogram implements Metric {
  private readonly series = new Map<string, { counts: number[]; sum: number; count: number }>();
  constructor(readonly name: string, readonly help: string, readonly buckets: number[] = DEFAULT_BUCKETS) {}
  observe(value: number, labels?: Labels): void {
    const k = labelKey(labels);
    let s = this.series.get(k);
    if (!s) {
      s = { counts: this.buckets.map(() => 0), sum: 0, count: 0 };
      this.series.set(k, s);
    }
    for (let i = 0; i < this.buckets.length; i++) if (value <= this.buckets[i]) s.counts[i]++;
    s.sum += value;
    s.count++;
  }
  count(labels?: Labels): number {
    return this.series.get(labelKey(labels))?.count ?? 0;
  }
  snapshot(): MetricFamily {
    const series = [...this.series].map(([key, s]) => ({
      key,
      counts: [...s.counts],
      sum: s.sum,
      count: s.count,
    }));
    return { name: this.name, help: this.help, type: "histogram", buckets: this.buckets, series };
  }
  render(): string {
    return renderFamily(this.snapshot());
  }
}

export class Registry {
  private readonly metrics = new Map<string, Metric>();
  private readonly remote = new Map<string, MetricFamily[]>();
  private get<T extends Metric>(name: string, make: () => T): T {
    const existing = this.metrics.get(name);
    if (existing) return existing as T;
    const m = make();
    this.metrics.set(name, m);
    return m;
  }
  counter(name: string, help: string): Counter {
    return this.get(name, () => new Counter(name, help));
  }
  gauge(name: string, help: string): Gauge {
    return this.get(name, () => new Gauge(name, help));
  }
  histogram(name: string, help: string, buckets?: number[]): Histogram {
    return this.get(name, () => new Histogram(name, help, buckets));
  }
  /** Every metric's values as plain data (what a worker sends to the process registry). */
  snapshot(): MetricFamily[] {
    return [...this.metrics.values()].map((m) => m.snapshot());
  }
  /**
   * Shows `families` (a worker's last snapshot) under the label `worker="<source>"`, replacing that source's
   * previous ones; `null` forgets the source (its worker is gone for good).
   */
  setRemote(source: string, families: MetricFamily[] | null): void {
    if (families) this.remote.set(source, families);
    else this.remote.delete(source);
  }
  render(): string {
    const merged = new Map<string, MetricFamily>();
    for (const m of this.metrics.values()) merged.set(m.name, m.snapshot());
    for (const [source, families] of this.remote) {
      const label = `worker="${source.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;
      for (const f of families) {
        // a worker's empty counter or gauge would render as an unlabelled 0: nothing to add
        if (!f.series.length) continue;
        const into = merged.get(f.name);
        if (into && (into.type !== f.type || into.buckets?.join() !== f.buckets?.join())) continue;
        const target = into ?? { ...f, series: [] };
        if (!into) merged.set(f.name, target);
        for (const s of f.series) target.series.push({ ...s, key: withLabel(s.key, label) });
      }
    }
    return [...merged.values()].map(renderFamily).join("\n") + "\n";
  }
}

/** The process-wide registry. */
export const registry = new Registry();
