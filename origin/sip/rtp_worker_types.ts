/**
 * The typed IPC between the main isolate (RtpWorker, RtpSession) and the RTP worker (rtp_worker.ts), defined
 * once. Calls are keyed by their RTP port (unique among the worker's bound pairs). Main → worker messages are
 * commands; worker → main messages are replies to a numbered request, or one `tick` batch per 20 ms clock pass
 * carrying every call's events (decoded audio, DTMF, RTCP BYE, media timeout, latching, pacing samples, stats),
 * the calls that want more prepared audio, and (about once a second) the worker's metric counts.
 */
import type { MediaDirection } from "./sdp.ts";

export interface RtpStats {
  packetsIn: number;
  packetsOut: number;
  octetsOut: number;
  junk: number;
  late: number;
  lost: number;
  comfortNoise: number;
  rtcpIn: number;
  rtcpOut: number;
  /** RTCP BYEs not from the caller (another address, or not its SSRC): ignored. */
  ignoredByes: number;
  /** Packets sent as silence because no prepared audio was queued in the worker. */
  underruns: number;
}

export function emptyRtpStats(): RtpStats {
  return {
    packetsIn: 0,
    packetsOut: 0,
    octetsOut: 0,
    junk: 0,
    late: 0,
    lost: 0,
    comfortNoise: 0,
    rtcpIn: 0,
    rtcpOut: 0,
    ignoredByes: 0,
    underruns: 0,
  };
}

/** What the worker needs to run one call's RTP on an already bound port pair. */
export interface RtpEndpointConfig {
  port: number;
  payloadType: 0 | 8;
  dtmfPayloadType?: number;
  remoteAddress: string;
  remotePort: number;
  direction: MediaDirection;
  held: boolean;
  /** 0 disables media-timeout detection. */
  mediaTimeoutMs: number;
  rtcpIntervalMs: number;
  cname: string;
  /** Report each outbound packet's gap and lateness (pacing statistics). */
  recordPacing: boolean;
  /** Prepared packets the worker keeps queued for this call (it asks main for more below this). */
  queuePackets: number;
}

export interface RtpMediaUpdate {
  direction: MediaDirection;
  held: boolean;
  remoteAddress?: string;
  remotePort?: number;
}

/** Main → worker. */
export type RtpWorkerCommand =
  /** First message: raise the worker thread's scheduling priority (SCHED_FIFO priority, 0: leave it). */
  | { type: "init"; realtimePriority: number }
  | { type: "bind"; req: number; host: string; port: number }
  | { type: "unbind"; req: number; port: number }
  | { type: "open"; config: RtpEndpointConfig }
  | { type: "update"; port: number; update: RtpMediaUpdate }
  /** Prepared G.711 payloads, answering a tick's `need`: `asked` is what was asked, payloads may be fewer. */
  | { type: "audio"; batch: Array<{ port: number; asked: number; payloads: Uint8Array[] }> }
  | { type: "close"; req: number; port: number }
  | { type: "shutdown"; req: number };

/** One call's events since the last tick. Absent fields: nothing new. */
export interface RtpEndpointReport {
  port: number;
  audio?: Int16Array[];
  dtmf?: Array<[digit: string, durationMs: number]>;
  rtcpBye?: true;
  mediaTimeout?: true;
  remote?: { address: string; port: number };
  /** Gaps between consecutive outbound packets, ms, each measured at the send call. */
  gaps?: number[];
  /** Each outbound packet's lateness against the call's ideal 20 ms grid, ms. */
  lateness?: number[];
  stats?: RtpStats;
}

/** The RTP counters and histograms (sip_metrics.ts declares them), counted in the worker and batched to main. */
export type RtpCounterName =
  | "packetsIn"
  | "packetsOut"
  | "directSends"
  | "junk"
  | "late"
  | "ignoredByes"
  | "skippedTicks"
  | "underruns";
export type RtpHistogramName = "sendGap" | "passSeconds";

export interface RtpMetricsBatch {
  counters: Partial<Record<RtpCounterName, number>>;
  histograms: Partial<Record<RtpHistogramName, number[]>>;
}

/** Worker → main. */
export type RtpWorkerEvent =
  | { type: "ready" }
  | { type: "reply"; req: number; ok: boolean; error?: string; final?: RtpEndpointReport }
  | {
    type: "tick";
    /** Calls that want `n` more prepared packets. */
    need: Array<[port: number, n: number]>;
    reports: RtpEndpointReport[];
    /** Ticks the worker's clock skipped since it started (stalls). */
    skipped: number;
    metrics?: RtpMetricsBatch;
  }
  | {
    type: "log";
    level: "debug" | "info" | "warn" | "error";
    msg: string;
    fields?: Record<string, unknown>;
  };
