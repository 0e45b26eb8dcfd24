/**
 * The RTP worker's metrics: lib/metrics.ts keeps one registry per isolate and /metrics serves the main one,
 * so the worker counts into this batcher and hands the batch to main (with a tick, about once a second),
 * where applyRtpMetrics (sip_metrics.ts) adds it to the registry.
 */
import type { RtpCounterName, RtpHistogramName, RtpMetricsSink } from "./sip_metrics.ts";
import type { RtpMetricsBatch } from "./rtp_worker_types.ts";

export class RtpMetricsBatcher implements RtpMetricsSink {
  #counters: Partial<Record<RtpCounterName, number>> = {};
  #histograms: Partial<Record<RtpHistogramName, number[]>> = {};
  #empty = true;

  count(name: RtpCounterName, by = 1): void {
    this.#counters[name] = (this.#counters[name] ?? 0) + by;
    this.#empty = false;
  }

  observe(name: RtpHistogramName, seconds: number): void {
    (this.#histograms[name] ??= []).push(seconds);
    this.#empty = false;
  }

  /** What was counted since the last take; undefined when nothing was. */
  take(): RtpMetricsBatch | undefined {
    if (this.#empty) return undefined;
    const b = { counters: this.#counters, histograms: this.#histograms };
    this.#counters = {};
    this.#histograms = {};
    this.#empty = true;
    return b;
  }
}
