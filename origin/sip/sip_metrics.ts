/** Prometheus metrics for the SIP user agent and RTP sessions. */
import { registry } from "../../lib/metrics.ts";
import type { RtpCounterName, RtpHistogramName, RtpMetricsBatch } from "./rtp_worker_types.ts";

export const sipMetrics = {
  messagesIn: registry.counter("parley_sip_messages_in_total", "SIP messages received, by kind"),
  rejectedIn: registry.counter(
    "parley_sip_malformed_total",
    "SIP datagrams/messages dropped or answered 4xx/5xx as malformed",
  ),
  responsesOut: registry.counter("parley_sip_responses_out_total", "SIP responses sent, by status class"),
  calls: registry.gauge("parley_sip_calls", "SIP calls currently alive"),
  callsEnded: registry.counter("parley_sip_calls_ended_total", "SIP calls ended, by reason"),
};

export const rtpMetrics = {
  packetsIn: registry.counter("parley_rtp_packets_in_total", "RTP packets received from latched remotes"),
  packetsOut: registry.counter("parley_rtp_packets_out_total", "RTP packets sent"),
  directSends: registry.counter(
    "parley_rtp_direct_sends_total",
    "RTP packets sent with sendto(2) on the call socket's own descriptor (the rest of packets_out went through " +
      "node:dgram)",
  ),
  junk: registry.counter(
    "parley_rtp_junk_total",
    "UDP datagrams on RTP/RTCP ports that were not valid media",
  ),
  late: registry.counter("parley_rtp_late_total", "RTP packets dropped by the jitter buffer as late"),
  ignoredByes: registry.counter(
    "parley_rtcp_bye_ignored_total",
    "RTCP BYEs ignored: not from the caller's media address or not naming its SSRC",
  ),
  sendGap: registry.histogram(
    "parley_rtp_send_gap_seconds",
    "Gap between consecutive passes of the shared RTP media clock (each pass sends every call's due packet)",
    [0.005, 0.01, 0.015, 0.019, 0.0199, 0.0201, 0.021, 0.025, 0.03, 0.04, 0.06, 0.1, 0.25],
  ),
  passSeconds: registry.histogram(
    "parley_rtp_clock_pass_seconds",
    "Time one media clock pass took: every call's send, then every call's next-packet request",
    [0.00005, 0.0001, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05],
  ),
  skippedTicks: registry.counter(
    "parley_rtp_clock_skipped_ticks_total",
    "20 ms RTP ticks the media clock skipped after a stall longer than its backlog",
  ),
  underruns: registry.counter(
    "parley_rtp_send_underruns_total",
    "Outbound RTP packets sent as silence because no prepared audio was queued in the RTP worker",
  ),
  workerFailures: registry.counter(
    "parley_rtp_worker_failures_total",
    "RTP worker deaths (crash or unresponsive): every call on it ended with media_error",
  ),
};

/** Where RTP code counts: the registry directly (main isolate), or a batch forwarded to it (RTP worker). */
export interface RtpMetricsSink {
  count(name: RtpCounterName, by?: number): void;
  observe(name: RtpHistogramName, seconds: number): void;
}

export type { RtpCounterName, RtpHistogramName };

/** The main isolate's sink: straight into lib/metrics.ts. */
export const registryRtpMetrics: RtpMetricsSink = {
  count: (name, by = 1) => rtpMetrics[name].inc(undefined, by),
  observe: (name, seconds) => rtpMetrics[name].observe(seconds),
};

/** Applies a batch the RTP worker collected in its isolate to this isolate's registry (served on /metrics). */
export function applyRtpMetrics(b: RtpMetricsBatch): void {
  for (const [name, by] of Object.entries(b.counters) as Array<[RtpCounterName, number]>) {
    if (by > 0) rtpMetrics[name].inc(undefined, by);
  }
  for (const [name, values] of Object.entries(b.histograms) as Array<[RtpHistogramName, number[]]>) {
    for (const v of values) rtpMetrics[name].observe(v);
  }
}
