/** Prometheus metrics for the SIP user agent and RTP sessions. */
import { registry } from "../../lib/metrics.ts";

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
  junk: registry.counter(
    "parley_rtp_junk_total",
    "UDP datagrams on RTP/RTCP ports that were not valid media",
  ),
  late: registry.counter("parley_rtp_late_total", "RTP packets dropped by the jitter buffer as late"),
  ignoredByes: registry.counter(
    "parley_rtcp_bye_ignored_total",
    "RTCP BYEs ignored: not from the caller's media address or not naming its SSRC",
  ),
};
